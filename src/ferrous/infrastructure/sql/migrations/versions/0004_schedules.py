"""Schedules, and what builds record for them and for auto-cancel.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04

Self-contained like 0001: no import of the application's types. ``builds.auto_cancel`` gets
a server default so that builds stored before it read as GitLab's default, ``conservative``.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(length=36)


def timestamp(name: str, nullable: bool) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "schedules",
        sa.Column("id", ID, nullable=False),
        sa.Column("project_id", ID, nullable=False),
        sa.Column("pipeline_id", ID, nullable=False),
        sa.Column("description", sa.String(length=255), nullable=False),
        sa.Column("cron", sa.String(length=255), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("ref", sa.String(length=255), nullable=True),
        sa.Column("variables", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        timestamp("next_run_at", True),
        timestamp("last_run_at", True),
        sa.Column("last_build_id", ID, nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        timestamp("created_at", False),
        sa.ForeignKeyConstraint(
            ["pipeline_id"],
            ["pipelines.id"],
            name=op.f("fk_schedules_pipeline_id_pipelines"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_schedules_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_schedules")),
    )
    op.create_index(op.f("ix_schedules_next_run_at"), "schedules", ["next_run_at"])
    op.create_index(
        op.f("ix_schedules_project_id_created_at"), "schedules", ["project_id", "created_at"]
    )
    op.create_index(op.f("ix_schedules_pipeline_id"), "schedules", ["pipeline_id"])
    op.add_column("builds", sa.Column("schedule_id", ID, nullable=True))
    op.add_column(
        "builds",
        sa.Column(
            "auto_cancel",
            sa.String(length=16),
            server_default=sa.text("'conservative'"),
            nullable=False,
        ),
    )


def downgrade() -> None:
    with op.batch_alter_table("builds") as batch:  # SQLite rebuilds the table
        batch.drop_column("auto_cancel")
        batch.drop_column("schedule_id")
    op.drop_table("schedules")
