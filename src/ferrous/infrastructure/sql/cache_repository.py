"""Cache rows on SQL, each call its own short transaction.

Two jobs of a project may save one key at the same moment: the last to commit wins. On
PostgreSQL the existing row is locked (``FOR UPDATE``) before it is replaced; when there is
none yet, the insert skips a row a concurrent save inserted meanwhile (``ON CONFLICT DO
NOTHING``) and the save tries again, now finding that row to replace.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Row, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncEngine

from ferrous.application.artifact_ports import Cache, JobContext
from ferrous.domain.errors import Contention
from ferrous.infrastructure.sql.artifact_repository import check_lease, load_job, reading, writing
from ferrous.infrastructure.sql.schema import caches

_c = caches.c
_INSERT = {
    "postgresql": postgresql.insert(caches).on_conflict_do_nothing(),
    "sqlite": sqlite.insert(caches).on_conflict_do_nothing(),
}
ATTEMPTS = 3


def _cache(row: Row[Any]) -> Cache:
    values = row._mapping
    return Cache(**{c.name: values[c.name] for c in caches.c})


class SqlCacheRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._insert = _INSERT[engine.dialect.name]

    async def job(self, job_id: str) -> JobContext:
        return await load_job(self._engine, job_id)

    async def get(self, project_id: str, scope: str, key: str) -> Cache | None:
        statement = select(caches).where(
            _c.project_id == project_id, _c.scope == scope, _c.key == key
        )
        async with reading(self._engine) as conn:
            row = (await conn.execute(statement)).first()
        return None if row is None else _cache(row)

    async def touch(self, cache_id: str, now: datetime) -> None:
        async with writing(self._engine) as conn:
            await conn.execute(
                update(caches)
                .where(_c.id == cache_id, _c.last_used_at < now)
                .values(last_used_at=now)
            )

    async def replace(self, cache: Cache, *, job_id: str, agent_id: str) -> Cache | None:
        found = select(caches).where(
            _c.project_id == cache.project_id, _c.scope == cache.scope, _c.key == cache.key
        )
        values = {c.name: getattr(cache, c.name) for c in caches.c}
        for _ in range(ATTEMPTS):
            async with writing(self._engine) as conn:
                await check_lease(conn, job_id, agent_id)
                old = (await conn.execute(found.with_for_update())).first()
                if old is not None:
                    await conn.execute(delete(caches).where(_c.id == old.id))
                result = await conn.execute(self._insert.values(**values))
                assert isinstance(result, CursorResult)
                if result.rowcount == 1:
                    return None if old is None else _cache(old)
        raise Contention(f"cache {cache.key!r} is being saved by many jobs at once")
