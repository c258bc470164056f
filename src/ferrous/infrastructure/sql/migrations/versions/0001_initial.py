"""The initial schema: projects, pipelines, builds, jobs, attempts, agents, logs, outbox.

Revision ID: 0001
Revises:
Create Date: 2026-11-26

Generated with autogenerate from ``schema.py`` and then made self-contained (no import of the
application's types: later schema changes must not rewrite history).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(length=36)
JSON = sa.JSON()  # json, not jsonb: keeps key order (see types.py)


def timestamp(name: str, nullable: bool) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "projects",
        sa.Column("id", ID, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("repo_url", sa.Text(), nullable=False),
        sa.Column("default_branch", sa.String(length=255), nullable=False),
        timestamp("created_at", False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_projects")),
        sa.UniqueConstraint("name", name=op.f("uq_projects_name")),
    )
    op.create_table(
        "pipelines",
        sa.Column("id", ID, nullable=False),
        sa.Column("project_id", ID, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("config_path", sa.Text(), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("next_number", sa.Integer(), server_default=sa.text("1"), nullable=False),
        timestamp("created_at", False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_pipelines_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pipelines")),
        sa.UniqueConstraint("project_id", "name", name=op.f("uq_pipelines_project_id_name")),
    )
    op.create_table(
        "builds",
        sa.Column("id", ID, nullable=False),
        sa.Column("project_id", ID, nullable=False),
        sa.Column("pipeline_id", ID, nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("ref", sa.String(length=255), nullable=False),
        sa.Column("sha", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("failure_reason", sa.Text(), nullable=True),
        sa.Column("variables", JSON, nullable=False),
        sa.Column("problems", JSON, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        timestamp("created_at", False),
        timestamp("started_at", True),
        timestamp("finished_at", True),
        sa.ForeignKeyConstraint(
            ["pipeline_id"],
            ["pipelines.id"],
            name=op.f("fk_builds_pipeline_id_pipelines"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_builds_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_builds")),
        sa.UniqueConstraint("pipeline_id", "number", name=op.f("uq_builds_pipeline_id_number")),
    )
    for columns in (
        ["created_at", "id"],
        ["project_id", "created_at", "id"],
        ["pipeline_id", "created_at", "id"],
        ["status", "created_at", "id"],
        ["ref", "created_at", "id"],
    ):
        op.create_index(op.f("ix_builds_" + "_".join(columns)), "builds", columns)
    op.create_table(
        "jobs",
        sa.Column("id", ID, nullable=False),
        sa.Column("build_id", ID, nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("stage", sa.String(length=255), nullable=False),
        sa.Column("stage_index", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("failure_allowed", sa.Boolean(), nullable=False),
        sa.Column("agent_id", ID, nullable=True),
        sa.Column("exit_code", sa.Integer(), nullable=True),
        sa.Column("failure_reason", sa.Text(), nullable=True),
        sa.Column("definition", JSON, nullable=False),
        sa.Column("spec", JSON, nullable=False),
        sa.Column("tags", JSON, nullable=False),
        timestamp("queued_at", True),
        timestamp("scheduled_for", True),
        timestamp("started_at", True),
        timestamp("finished_at", True),
        sa.ForeignKeyConstraint(
            ["build_id"], ["builds.id"], name=op.f("fk_jobs_build_id_builds"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
        sa.UniqueConstraint("build_id", "position", name=op.f("uq_jobs_build_id_position")),
    )
    op.create_index("ix_jobs_claim", "jobs", ["status", "queued_at", "build_id", "position"])
    op.create_index(op.f("ix_jobs_agent_id_status"), "jobs", ["agent_id", "status"])
    op.create_table(
        "job_tags",
        sa.Column("job_id", ID, nullable=False),
        sa.Column("tag", sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_job_tags_job_id_jobs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("job_id", "tag", name=op.f("pk_job_tags")),
    )
    op.create_table(
        "job_attempts",
        sa.Column("job_id", ID, nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("build_id", ID, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("agent_id", ID, nullable=True),
        sa.Column("exit_code", sa.Integer(), nullable=True),
        sa.Column("failure_reason", sa.Text(), nullable=True),
        timestamp("started_at", True),
        timestamp("finished_at", True),
        sa.ForeignKeyConstraint(
            ["build_id"],
            ["builds.id"],
            name=op.f("fk_job_attempts_build_id_builds"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_job_attempts_job_id_jobs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("job_id", "number", name=op.f("pk_job_attempts")),
    )
    op.create_index(op.f("ix_job_attempts_build_id"), "job_attempts", ["build_id"])
    op.create_table(
        "agents",
        sa.Column("id", ID, nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("token_hash", sa.String(length=128), nullable=False),
        sa.Column("labels", JSON, nullable=False),
        sa.Column("platform", JSON, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("embedded", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        timestamp("created_at", False),
        timestamp("last_seen_at", False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agents")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_agents_token_hash")),
    )
    op.create_index(op.f("ix_agents_status_last_seen_at"), "agents", ["status", "last_seen_at"])
    op.create_table(
        "log_chunks",
        sa.Column("job_id", ID, nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("job_id", "offset", name=op.f("pk_log_chunks")),
    )
    op.create_table(
        "outbox",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("payload", JSON, nullable=False),
        timestamp("created_at", False),
        timestamp("published_at", True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_outbox_unpublished",
        "outbox",
        ["id"],
        postgresql_where=sa.text("published_at IS NULL"),
        sqlite_where=sa.text("published_at IS NULL"),
    )


def downgrade() -> None:
    for table in (
        "outbox",
        "log_chunks",
        "agents",
        "job_attempts",
        "job_tags",
        "jobs",
        "builds",
        "pipelines",
        "projects",
    ):
        op.drop_table(table)
