"""The cleanup's deletions on SQL: pick a batch, DELETE it with the conditions again, RETURNING.

Each call is one short write transaction (behind SQLite's write gate like any write). The
DELETE repeats the conditions of the pick, so a row that changed in between (a cache used, a
build that started running again after a retry) stays; RETURNING gives exactly the rows that
went, whose objects the caller then deletes. Both databases support ``DELETE ... RETURNING``
(SQLite since 3.35). The orphan sweep's lookup (``referenced_objects``) is a read: one
``object_key IN (...)`` per table for a batch of keys, ``UNION ALL``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Table, delete, func, select, union_all
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ferrous.application.retention import Freed
from ferrous.domain.errors import StorageError
from ferrous.domain.statuses import BuildStatus
from ferrous.infrastructure.sql.latest_artifacts import kept_as_latest
from ferrous.infrastructure.sql.schema import (
    artifacts,
    builds,
    caches,
    installation,
    job_logs,
    jobs,
)
from ferrous.infrastructure.sql.session import raise_storage_error, write_transaction

_FINISHED_BUILDS = [status.value for status in BuildStatus if status.is_finished]
_a, _c, _l = artifacts.c, caches.c, job_logs.c
# the row's build is finished (correlated to the row being picked or deleted)
_ARTIFACT_BUILD_FINISHED = (
    select(builds.c.id)
    .where(builds.c.id == _a.build_id, builds.c.status.in_(_FINISHED_BUILDS))
    .exists()
)
_LOG_BUILD_FINISHED = (
    select(jobs.c.id)
    .join(builds, builds.c.id == jobs.c.build_id)
    .where(jobs.c.id == _l.job_id, builds.c.status.in_(_FINISHED_BUILDS))
    .exists()
)
#: the tables whose rows name objects (the orphan sweep's lookup)
_NAMING = (artifacts, caches, job_logs)


class SqlRetentionIndex:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def delete_expired_artifacts(self, now: datetime, limit: int) -> list[Freed]:
        # the DELETE re-checks "kept" too: a build that became its ref's latest success
        # after the pick (a retry that passed) keeps its artifacts
        conditions = [
            _a.expires_at < now,
            _ARTIFACT_BUILD_FINISHED,
            ~kept_as_latest(_a.build_id),
        ]

        async def work(conn: AsyncConnection) -> list[Freed]:
            ids = await _pick(conn, artifacts, conditions, _a.expires_at, limit)
            return await _delete(conn, artifacts, ids, conditions, _a.size)

        return await self._run(work)

    async def delete_unused_caches(self, used_before: datetime, limit: int) -> list[Freed]:
        conditions = [_c.last_used_at < used_before]

        async def work(conn: AsyncConnection) -> list[Freed]:
            ids = await _pick(conn, caches, conditions, _c.last_used_at, limit)
            return await _delete(conn, caches, ids, conditions, _c.size)

        return await self._run(work)

    async def delete_caches_over(
        self, max_total: int, used_before: datetime, limit: int
    ) -> list[Freed]:
        conditions = [_c.last_used_at < used_before]

        async def work(conn: AsyncConnection) -> list[Freed]:
            ids = await _pick_over(
                conn, caches, _c.size, max_total, conditions, _c.last_used_at, limit
            )
            return await _delete(conn, caches, ids, conditions, _c.size)

        return await self._run(work)

    async def delete_logs_archived_before(self, before: datetime, limit: int) -> list[Freed]:
        conditions = [_l.archived_at < before, _LOG_BUILD_FINISHED]

        async def work(conn: AsyncConnection) -> list[Freed]:
            ids = await _pick(conn, job_logs, conditions, _l.archived_at, limit)
            return await _delete(conn, job_logs, ids, conditions, _l.stored_size)

        return await self._run(work)

    async def delete_logs_over(self, max_total: int, limit: int) -> list[Freed]:
        conditions = [_LOG_BUILD_FINISHED]

        async def work(conn: AsyncConnection) -> list[Freed]:
            ids = await _pick_over(
                conn, job_logs, _l.stored_size, max_total, conditions, _l.archived_at, limit
            )
            return await _delete(conn, job_logs, ids, conditions, _l.stored_size)

        return await self._run(work)

    async def referenced_objects(self, keys: Sequence[str]) -> set[str]:
        """One read of the three tables for a batch of keys (no write transaction: the
        sweep only deletes objects older than its grace, which no new row will name)."""
        if not keys:
            return set()
        wanted = list(keys)
        statement = union_all(
            *(select(table.c.object_key).where(table.c.object_key.in_(wanted)) for table in _NAMING)
        )
        try:
            async with self._engine.connect() as conn:
                return {str(key) for key in (await conn.scalars(statement)).all()}
        except SQLAlchemyError as exc:
            raise_storage_error(exc)

    async def installation_id(self) -> str:
        statement = select(installation.c.id).order_by(installation.c.created_at).limit(1)
        try:
            async with self._engine.connect() as conn:
                found = (await conn.execute(statement)).scalar_one_or_none()
        except SQLAlchemyError as exc:
            raise_storage_error(exc)
        if found is None:  # migration 0016 makes it: someone emptied the table
            raise StorageError("the database has no installation id (table installation)")
        return str(found)

    async def _run(self, work: Callable[[AsyncConnection], Awaitable[list[Freed]]]) -> list[Freed]:
        try:
            async with write_transaction(self._engine) as conn:
                return await work(conn)
        except SQLAlchemyError as exc:
            raise_storage_error(exc)


def _key(table: Table) -> ColumnElement[Any]:
    return table.c.job_id if table is job_logs else table.c.id


async def _pick(
    conn: AsyncConnection,
    table: Table,
    conditions: Sequence[ColumnElement[bool]],
    oldest_first: ColumnElement[Any],
    limit: int,
) -> list[str]:
    key = _key(table)
    statement = select(key).where(*conditions).order_by(oldest_first, key).limit(limit)
    return [str(row[0]) for row in await conn.execute(statement)]


async def _pick_over(
    conn: AsyncConnection,
    table: Table,
    size: ColumnElement[Any],
    max_total: int,
    conditions: Sequence[ColumnElement[bool]],
    oldest_first: ColumnElement[Any],
    limit: int,
) -> list[str]:
    """The oldest rows (up to ``limit``) whose sizes cover what all rows take past
    ``max_total``."""
    total = int((await conn.execute(select(func.coalesce(func.sum(size), 0)))).scalar_one())
    excess = total - max_total
    if excess <= 0:
        return []
    key = _key(table)
    statement = select(key, size).where(*conditions).order_by(oldest_first, key).limit(limit)
    picked: list[str] = []
    for row in await conn.execute(statement):
        if excess <= 0:
            break
        picked.append(str(row[0]))
        excess -= int(row[1])
    return picked


async def _delete(
    conn: AsyncConnection,
    table: Table,
    ids: list[str],
    conditions: Sequence[ColumnElement[bool]],
    size: ColumnElement[Any],
) -> list[Freed]:
    if not ids:
        return []
    statement = (
        delete(table).where(_key(table).in_(ids), *conditions).returning(table.c.object_key, size)
    )
    return [Freed(str(row[0]), int(row[1])) for row in await conn.execute(statement)]
