"""The installation's id, which the object store's marker must match before an orphan sweep.

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-27

Self-contained like 0001: no import of the application's types.
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
