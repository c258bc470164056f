"""Pipeline trigger tokens: a project's secrets for external systems that start builds.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-12

Self-contained like 0001: no import of the application's types.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(length=36)


def timestamp(name: str, nullable: bool) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "trigger_tokens",
        sa.Column("id", ID, nullable=False),
        sa.Column("project_id", ID, nullable=False),
        sa.Column("description", sa.String(length=200), nullable=False),
        sa.Column("token_hash", sa.String(length=128), nullable=False),
        timestamp("created_at", False),
        timestamp("last_used_at", True),
        timestamp("revoked_at", True),
        timestamp("expires_at", True),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_trigger_tokens_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trigger_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_trigger_tokens_token_hash")),
    )
    op.create_index(
        op.f("ix_trigger_tokens_project_id_created_at"),
        "trigger_tokens",
        ["project_id", "created_at"],
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_trigger_tokens_project_id_created_at"), table_name="trigger_tokens")
    op.drop_table("trigger_tokens")
