"""Webhooks: each project's sealed webhook secret, and the record of every delivery.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27

Self-contained like 0001: no import of the application's types.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(length=36)


def upgrade() -> None:
    op.add_column("projects", sa.Column("webhook_secret", sa.Text(), nullable=True))
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", ID, nullable=False),
        sa.Column("project_id", ID, nullable=False),
        sa.Column("forge", sa.String(length=20), nullable=False),
        sa.Column("delivery_id", sa.String(length=200), nullable=False),
        sa.Column("event", sa.String(length=100), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("build_ids", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_webhook_deliveries_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
        sa.UniqueConstraint(
            "project_id",
            "forge",
            "delivery_id",
            name=op.f("uq_webhook_deliveries_project_id_forge_delivery_id"),
        ),
    )
    op.create_index(
        op.f("ix_webhook_deliveries_project_id_received_at_id"),
        "webhook_deliveries",
        ["project_id", "received_at", "id"],
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_webhook_deliveries_project_id_received_at_id"), table_name="webhook_deliveries"
    )
    op.drop_table("webhook_deliveries")
    with op.batch_alter_table("projects") as batch:  # SQLite rebuilds the table
        batch.drop_column("webhook_secret")
