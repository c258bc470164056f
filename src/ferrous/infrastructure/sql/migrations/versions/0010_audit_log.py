"""The append-only audit log.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-27

Self-contained like 0001: no import of the application's types.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(length=36)
JSON = sa.JSON()  # json, not jsonb: keeps key order (see types.py)

INDEXES = {
    "ix_audit_log_at_id": ["at", "id"],
    "ix_audit_log_actor_id_at": ["actor_id", "at"],
    "ix_audit_log_actor_name_at": ["actor_name", "at"],
}


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", ID, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_kind", sa.String(length=16), nullable=True),
        sa.Column("actor_id", sa.String(length=255), nullable=True),
        sa.Column("actor_name", sa.String(length=255), nullable=True),
        sa.Column("role", sa.String(length=16), nullable=True),
        sa.Column("action", sa.String(length=300), nullable=False),
        sa.Column("target", JSON, nullable=False),
        sa.Column("source_ip", sa.String(length=64), nullable=True),
        sa.Column("result", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.String(length=128), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    for name, columns in INDEXES.items():
        op.create_index(op.f(name), "audit_log", columns)


def downgrade() -> None:
    for name in INDEXES:
        op.drop_index(op.f(name), table_name="audit_log")
    op.drop_table("audit_log")
