"""The installation's id, which the object store's marker must match before an orphan sweep.

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-27

Self-contained like 0001: no import of the application's types. The one row is made here,
so every server of the installation reads the same id from its first start on; upgrading
an upgraded database does nothing, so the id stays.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    installation = op.create_table(
        "installation",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_installation")),
    )
    assert installation is not None
    op.execute(
        installation.insert().values(id=str(uuid.uuid4()), created_at=sa.func.current_timestamp())
    )


def downgrade() -> None:
    op.drop_table("installation")
