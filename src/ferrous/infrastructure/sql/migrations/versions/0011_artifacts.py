"""Artifacts, caches, test reports, archived logs; a job's coverage; a project's default
artifact expiry.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-27

Self-contained like 0001: no import of the application's types.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(length=36)
JSON = sa.JSON()  # json, not jsonb: keeps key order (see types.py)
AT = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("coverage", sa.Float(), nullable=True))
    with op.batch_alter_table("projects") as batch:
        batch.add_column(sa.Column("artifacts_expire_in", sa.String(length=64), nullable=True))
    op.create_table(
        "artifacts",
        sa.Column("id", ID, nullable=False),
        sa.Column("job_id", ID, nullable=False),
        sa.Column("build_id", ID, nullable=False),
        sa.Column("project_id", ID, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("object_key", sa.Text(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("files", sa.Integer(), nullable=False),
        sa.Column("entries", JSON, nullable=True),
        sa.Column("entries_truncated", sa.Boolean(), nullable=False),
        sa.Column("created_at", AT, nullable=False),
        sa.Column("expires_at", AT, nullable=True),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_artifacts_job_id_jobs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_artifacts")),
        sa.UniqueConstraint("job_id", "kind", name=op.f("uq_artifacts_job_id_kind")),
    )
    op.create_index(op.f("ix_artifacts_build_id"), "artifacts", ["build_id"])
    op.create_index(op.f("ix_artifacts_expires_at"), "artifacts", ["expires_at"])
    op.create_table(
        "caches",
        sa.Column("id", ID, nullable=False),
        sa.Column("project_id", ID, nullable=False),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("object_key", sa.Text(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", AT, nullable=False),
        sa.Column("last_used_at", AT, nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_caches_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_caches")),
        sa.UniqueConstraint(
            "project_id", "scope", "key", name=op.f("uq_caches_project_id_scope_key")
        ),
    )
    op.create_index(op.f("ix_caches_last_used_at"), "caches", ["last_used_at"])
    op.create_table(
        "test_cases",
        sa.Column("id", ID, nullable=False),
        sa.Column("job_id", ID, nullable=False),
        sa.Column("build_id", ID, nullable=False),
        sa.Column("project_id", ID, nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("suite", sa.Text(), nullable=False),
        sa.Column("class_name", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("file", sa.Text(), nullable=True),
        sa.Column("duration", sa.Float(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("failure", sa.Text(), nullable=True),
        sa.Column("test_key", sa.String(length=64), nullable=False),
        sa.Column("created_at", AT, nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_test_cases_job_id_jobs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_test_cases")),
    )
    op.create_index(op.f("ix_test_cases_build_id_status"), "test_cases", ["build_id", "status"])
    op.create_index(op.f("ix_test_cases_job_id_position"), "test_cases", ["job_id", "position"])
    op.create_index(
        op.f("ix_test_cases_project_id_test_key_created_at"),
        "test_cases",
        ["project_id", "test_key", "created_at"],
    )
    op.create_table(
        "job_logs",
        sa.Column("job_id", ID, nullable=False),
        sa.Column("object_key", sa.Text(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("stored_size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("frames", JSON, nullable=False),
        sa.Column("archived_at", AT, nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_job_logs_job_id_jobs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("job_id", name=op.f("pk_job_logs")),
    )
    op.create_index(op.f("ix_job_logs_archived_at"), "job_logs", ["archived_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_job_logs_archived_at"), table_name="job_logs")
    op.drop_table("job_logs")
    for name in (
        "ix_test_cases_project_id_test_key_created_at",
        "ix_test_cases_job_id_position",
        "ix_test_cases_build_id_status",
    ):
        op.drop_index(op.f(name), table_name="test_cases")
    op.drop_table("test_cases")
    op.drop_index(op.f("ix_caches_last_used_at"), table_name="caches")
    op.drop_table("caches")
    op.drop_index(op.f("ix_artifacts_expires_at"), table_name="artifacts")
    op.drop_index(op.f("ix_artifacts_build_id"), table_name="artifacts")
    op.drop_table("artifacts")
    with op.batch_alter_table("projects") as batch:
        batch.drop_column("artifacts_expire_in")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("coverage")
