"""Column types that behave the same on SQLite and PostgreSQL.

SQLite has no time zones: ``UtcDateTime`` stores UTC (naive text on SQLite, ``timestamptz``
on PostgreSQL) and always returns aware UTC datetimes. ``JSON_TYPE`` is JSON text on both,
deliberately not JSONB: nothing queries inside these documents, ``json`` is cheaper to write,
and it keeps the order of keys (a job's ``variables`` are expanded in their written order;
JSONB would reorder them on PostgreSQL only).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

JSON_TYPE: TypeEngine[Any] = JSON()


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime; naive datetimes are refused rather than guessed."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass an aware (UTC) datetime")
        if value.tzinfo is not UTC:
            value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        if value.tzinfo is not UTC:
            return value.astimezone(UTC)
        return value


def _default(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, frozenset | set):
        return sorted(value)  # JSON has no sets; sorted for stability
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def json_dumps(value: object) -> str:
    """The engines' JSON serializer: compact, and tolerant of datetimes and sets."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=_default)
