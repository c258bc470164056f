"""The installation's identity (migration 0016).

One row, made when the database is migrated to 0016: the id tells this installation's objects
from another's in a shared object store (``application.store_marker``). A copy of the
database keeps it, which is why a copy needs a store of its own.
"""

from __future__ import annotations

from sqlalchemy import Column, Table

from ferrous.infrastructure.sql.table_metadata import ID, metadata
from ferrous.infrastructure.sql.types import UtcDateTime

installation = Table(
    "installation",
    metadata,
    Column("id", ID, primary_key=True),
    Column("created_at", UtcDateTime, nullable=False),
)
