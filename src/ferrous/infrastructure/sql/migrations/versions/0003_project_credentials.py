"""Projects' repository credentials, sealed by the secret box.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04

Self-contained like 0001: no import of the application's types.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("projects", sa.Column("credentials", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("projects") as batch:  # SQLite rebuilds the table
        batch.drop_column("credentials")
