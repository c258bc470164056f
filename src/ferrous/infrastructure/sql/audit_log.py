"""The audit log on SQL: one INSERT per entry in a short transaction of its own.

It is written outside the units of work (the API edge records an entry once the answer's
status is known) through ``write_transaction``, so on SQLite it queues behind the write gate
like any other write. Listings walk ``ix_audit_log_at_id`` newest first with the same keyset
cursor as the builds; the filter repeats ``domain.audit.AuditFilter.matches``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, Select, insert, literal, or_, select, tuple_
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from ferrous.application.queries import Page
from ferrous.domain.audit import AuditEntry, AuditFilter
from ferrous.infrastructure.sql.cursor import decode_cursor, encode_cursor
from ferrous.infrastructure.sql.schema import audit_log as a
from ferrous.infrastructure.sql.session import raise_storage_error, write_transaction
from ferrous.infrastructure.sql.types import UtcDateTime

COLUMNS = tuple(AuditEntry.__dataclass_fields__)
MAX_PAGE = 500
_INSERT = insert(a)


def _where(statement: Select[Any], filters: AuditFilter) -> Select[Any]:
    if filters.actor is not None:
        statement = statement.where(
            or_(a.c.actor_id == filters.actor, a.c.actor_name == filters.actor)
        )
    if filters.action_prefix is not None:
        statement = statement.where(a.c.action.startswith(filters.action_prefix, autoescape=True))
    if filters.since is not None:
        statement = statement.where(a.c.at >= filters.since)
    if filters.until is not None:
        statement = statement.where(a.c.at < filters.until)
    if filters.result is not None:
        statement = statement.where(a.c.result == filters.result)
    return statement


def _entry(row: Row[Any]) -> AuditEntry:
    values = {name: row._mapping[name] for name in COLUMNS}
    values["target"] = dict(values["target"] or {})
    return AuditEntry(**values)


class SqlAuditLog:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def record(self, entry: AuditEntry) -> None:
        values = {name: getattr(entry, name) for name in COLUMNS}
        values["target"] = dict(entry.target)
        async with write_transaction(self._engine) as conn:
            try:
                await conn.execute(_INSERT, values)
            except SQLAlchemyError as exc:
                raise_storage_error(exc)

    async def query(
        self, filters: AuditFilter, *, cursor: str | None = None, limit: int = 50
    ) -> Page[AuditEntry]:
        limit = max(1, min(limit, MAX_PAGE))
        statement = _where(select(a), filters)
        if cursor is not None:
            at, entry_id = decode_cursor(cursor)
            statement = statement.where(
                tuple_(a.c.at, a.c.id)
                < tuple_(literal(at, UtcDateTime()), literal(entry_id, a.c.id.type))
            )
        statement = statement.order_by(a.c.at.desc(), a.c.id.desc()).limit(limit + 1)
        try:
            async with self._engine.connect() as conn:
                rows = (await conn.execute(statement)).all()
        except SQLAlchemyError as exc:
            raise_storage_error(exc)
        items = [_entry(row) for row in rows[:limit]]
        next_cursor = None
        if len(rows) > limit:
            next_cursor = encode_cursor(items[-1].at, items[-1].id)
        return Page(items=items, next_cursor=next_cursor)
