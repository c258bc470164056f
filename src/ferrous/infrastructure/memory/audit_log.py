"""The audit log in memory, with the SQL adapter's order, filters and cursors."""

from __future__ import annotations

from ferrous.application.queries import Page
from ferrous.domain.audit import AuditEntry, AuditFilter
from ferrous.infrastructure.sql.cursor import decode_cursor, encode_cursor

MAX_PAGE = 500


class InMemoryAuditLog:
    def __init__(self) -> None:
        self._entries: list[AuditEntry] = []

    async def record(self, entry: AuditEntry) -> None:
        self._entries.append(entry)

    async def query(
        self, filters: AuditFilter, *, cursor: str | None = None, limit: int = 50
    ) -> Page[AuditEntry]:
        limit = max(1, min(limit, MAX_PAGE))
        found = sorted(
            (entry for entry in self._entries if filters.matches(entry)),
            key=lambda entry: (entry.at, entry.id),
            reverse=True,
        )
        if cursor is not None:
            after = decode_cursor(cursor)
            found = [entry for entry in found if (entry.at, entry.id) < after]
        items = found[:limit]
        next_cursor = None
        if len(found) > limit:
            next_cursor = encode_cursor(items[-1].at, items[-1].id)
        return Page(items=items, next_cursor=next_cursor)
