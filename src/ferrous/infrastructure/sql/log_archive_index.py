"""The database side of archived logs: ``job_logs`` rows and the chunks they replace.

Reads that must agree with each other are one statement (one snapshot on both databases): the
log's size reads the archived size and the last chunk together, and a range of chunks is
read from the chunk holding its first byte, so a read racing an archive either finds that
chunk (and its bytes are right: chunks never change) or finds none and says so. Saving an
archive is a compare-and-set on the previous object's key, with the deletion of the chunks
it covers in the same transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import BindParameter, Row, bindparam, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from ferrous.application.log_archive import ArchivedLog, Frame, JobLogPlace
from ferrous.domain.statuses import FINISHED_STATUSES
from ferrous.infrastructure.sql.schema import builds, job_logs, jobs, log_chunks
from ferrous.infrastructure.sql.session import raise_storage_error, write_transaction

_c, _l = log_chunks.c, job_logs.c
_JOB: BindParameter[str] = bindparam("job_id")

_PLACE = (
    select(builds.c.project_id, jobs.c.build_id, jobs.c.status)
    .join(builds, builds.c.id == jobs.c.build_id)
    .where(jobs.c.id == _JOB)
)
_ARCHIVED = select(job_logs).where(_l.job_id == _JOB)
_SIZE = select(
    func.coalesce(select(_l.size).where(_l.job_id == _JOB).scalar_subquery(), 0).label("archived"),
    func.coalesce(
        select(_c.offset + func.length(_c.data))
        .where(_c.job_id == _JOB)
        .order_by(_c.offset.desc())
        .limit(1)
        .scalar_subquery(),
        0,
    ).label("chunks"),
)
_PAGE = (
    select(_c.offset, _c.data)
    .where(_c.job_id == _JOB, _c.offset >= bindparam("start"))
    .order_by(_c.offset)
    .limit(bindparam("limit"))
)
# from the chunk that holds byte `start` (none: NULL, so no rows)
_HOLDER = (
    select(func.max(_c.offset))
    .where(_c.job_id == _JOB, _c.offset <= bindparam("start"))
    .scalar_subquery()
)
_READ_FROM = select(_c.offset, _c.data).where(_c.job_id == _JOB, _c.offset >= _HOLDER)
_READ_RANGE = _READ_FROM.where(_c.offset < bindparam("end"))
_INSERT = {
    "postgresql": postgresql.insert(job_logs).on_conflict_do_nothing(),
    "sqlite": sqlite.insert(job_logs).on_conflict_do_nothing(),
}
# (an UPDATE's bind names must differ from its columns')
_MOVE = update(job_logs).where(
    _l.job_id == bindparam("moved_job_id"), _l.object_key == bindparam("previous_key")
)
_DELETE_CHUNKS = delete(log_chunks).where(_c.job_id == _JOB, _c.offset < bindparam("size"))
_FINISHED = [status.value for status in FINISHED_STATUSES]


def archived_log(row: Row[Any]) -> ArchivedLog:
    frames: tuple[Frame, ...] = tuple((int(raw), int(stored)) for raw, stored in row.frames)
    return ArchivedLog(
        object_key=row.object_key,
        size=int(row.size),
        stored_size=int(row.stored_size),
        sha256=row.sha256,
        frames=frames,
        archived_at=row.archived_at,
    )


class SqlLogArchiveIndex:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._dialect = engine.dialect.name

    async def _rows(self, statement: Any, params: dict[str, Any]) -> Sequence[Row[Any]]:
        try:
            async with self._engine.connect() as conn:
                return (await conn.execute(statement, params)).all()
        except SQLAlchemyError as exc:
            raise_storage_error(exc)

    async def place(self, job_id: str) -> JobLogPlace | None:
        rows = await self._rows(_PLACE, {"job_id": job_id})
        if not rows:
            return None
        row = rows[0]
        return JobLogPlace(
            project_id=str(row.project_id),
            build_id=str(row.build_id),
            finished=row.status in _FINISHED,
        )

    async def archived(self, job_id: str) -> ArchivedLog | None:
        rows = await self._rows(_ARCHIVED, {"job_id": job_id})
        return archived_log(rows[0]) if rows else None

    async def size(self, job_id: str) -> int:
        row = (await self._rows(_SIZE, {"job_id": job_id}))[0]
        return max(int(row.archived), int(row.chunks))

    async def chunk_page(self, job_id: str, start: int, limit: int) -> list[tuple[int, bytes]]:
        rows = await self._rows(_PAGE, {"job_id": job_id, "start": start, "limit": limit})
        return [(int(row.offset), bytes(row.data)) for row in rows]

    async def read_chunks(self, job_id: str, start: int, end: int | None) -> bytes | None:
        params: dict[str, Any] = {"job_id": job_id, "start": start}
        if end is None:
            statement = _READ_FROM
        else:
            statement, params["end"] = _READ_RANGE, end
        rows = await self._rows(statement.order_by(_c.offset), params)
        if not rows:
            return None
        base = int(rows[0].offset)
        data = b"".join(bytes(row.data) for row in rows)
        return data[start - base : None if end is None else end - base]

    async def save(self, job_id: str, archived: ArchivedLog, previous_key: str | None) -> bool:
        values = {
            "object_key": archived.object_key,
            "size": archived.size,
            "stored_size": archived.stored_size,
            "sha256": archived.sha256,
            "frames": [list(frame) for frame in archived.frames],
            "archived_at": archived.archived_at,
        }
        try:
            async with write_transaction(self._engine) as conn:
                if previous_key is None:
                    result = await conn.execute(
                        _INSERT[self._dialect], {"job_id": job_id, **values}
                    )
                else:
                    result = await conn.execute(
                        _MOVE.values(**values),
                        {"moved_job_id": job_id, "previous_key": previous_key},
                    )
                if result.rowcount != 1:
                    return False
                await conn.execute(_DELETE_CHUNKS, {"job_id": job_id, "size": archived.size})
        except SQLAlchemyError as exc:
            raise_storage_error(exc)
        return True

    async def finished_with_chunks(
        self, finished_before: datetime, after: str | None, limit: int
    ) -> list[str]:
        statement = (
            select(_c.job_id)
            .distinct()
            .join(jobs, jobs.c.id == _c.job_id)
            .where(jobs.c.status.in_(_FINISHED), jobs.c.finished_at < finished_before)
            .order_by(_c.job_id)
            .limit(limit)
        )
        if after is not None:
            statement = statement.where(_c.job_id > after)
        rows = await self._rows(statement, {})
        return [str(row.job_id) for row in rows]
