"""Agent registration tokens, created by an admin and spent by agents that register.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03

Self-contained like 0001: no import of the application's types.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def timestamp(name: str, nullable: bool) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "registration_tokens",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("description", sa.String(length=200), nullable=False),
        sa.Column("token_hash", sa.String(length=128), nullable=False),
        timestamp("created_at", False),
        timestamp("expires_at", True),
        timestamp("revoked_at", True),
        sa.Column("max_uses", sa.Integer(), nullable=True),
        sa.Column("uses", sa.Integer(), nullable=False),
        timestamp("last_used_at", True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registration_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_registration_tokens_token_hash")),
    )


def downgrade() -> None:
    op.drop_table("registration_tokens")
