"""Commit statuses: each project's forge link, and the reports queued for the forges.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-11

Self-contained like 0001: no import of the application's types.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(length=36)
UNSETTLED = sa.text("next_attempt_at IS NOT NULL")


def timestamp(name: str, nullable: bool) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.add_column("projects", sa.Column("forge", sa.String(length=16), nullable=True))
    op.add_column("projects", sa.Column("forge_api_url", sa.Text(), nullable=True))
    op.add_column("projects", sa.Column("forge_repo", sa.String(length=255), nullable=True))
    op.add_column("projects", sa.Column("forge_token", sa.Text(), nullable=True))
    op.create_table(
        "status_reports",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("project_id", ID, nullable=False),
        sa.Column("build_id", ID, nullable=False),
        sa.Column("job_id", ID, nullable=True),
        sa.Column("sha", sa.String(length=64), nullable=False),
        sa.Column("ref", sa.String(length=255), nullable=False),
        sa.Column("context", sa.String(length=255), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("description", sa.String(length=140), nullable=False),
        sa.Column("target_url", sa.Text(), nullable=True),
        timestamp("created_at", False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        timestamp("next_attempt_at", True),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        timestamp("sent_at", True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["build_id"],
            ["builds.id"],
            name=op.f("fk_status_reports_build_id_builds"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_status_reports_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_status_reports")),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_status_reports_due",
        "status_reports",
        ["next_attempt_at"],
        postgresql_where=UNSETTLED,
        sqlite_where=UNSETTLED,
    )
    op.create_index(op.f("ix_status_reports_build_id_id"), "status_reports", ["build_id", "id"])
    op.create_index(
        op.f("ix_status_reports_project_id_sha_context_id"),
        "status_reports",
        ["project_id", "sha", "context", "id"],
    )
    op.create_index(op.f("ix_status_reports_created_at"), "status_reports", ["created_at"])


def downgrade() -> None:
    op.drop_table("status_reports")  # its indexes go with it
    with op.batch_alter_table("projects") as batch:  # SQLite rebuilds the table
        batch.drop_column("forge_token")
        batch.drop_column("forge_repo")
        batch.drop_column("forge_api_url")
        batch.drop_column("forge")
