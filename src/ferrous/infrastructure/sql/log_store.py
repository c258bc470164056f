"""Job logs as chunks at byte offsets: idempotent appends, byte-range reads.

A chunk row is keyed by (job_id, offset) and chunks tile the log without gaps or overlaps, so
the log's size is the end of its last chunk (one index probe) and the chunk that holds byte
``start`` is the last one with ``offset <= start``. An agent that re-sends a chunk (a lost
reply) sends bytes already stored: they are compared and accepted once, and only a tail past
the end is appended. Two servers appending the same chunk at once meet on the primary key
(``ON CONFLICT DO NOTHING``): the loser compares what the winner stored.

A finished job's log is archived to the object store (``application.log_archive``): its
``job_logs`` row says how many bytes the archive holds and the chunks below that are gone.
The size counts the archive, so a retried job appends after it; an append below the archived
size is refused (its bytes cannot be compared here, and the job's lease is over anyway).
``read`` reads chunks only: the archived part is read through ``LogArchive``.
"""

from __future__ import annotations

from sqlalchemy import bindparam, func, select
from sqlalchemy.dialects import postgresql, sqlite

from ferrous.domain.errors import Conflict
from ferrous.infrastructure.sql.schema import job_logs, log_chunks
from ferrous.infrastructure.sql.session import SqlSession

_c = log_chunks.c
_LAST_CHUNK = (
    select(_c.offset, func.length(_c.data).label("size"))
    .where(_c.job_id == bindparam("job_id"))
    .order_by(_c.offset.desc())
    .limit(1)
)
_ARCHIVED_SIZE = select(job_logs.c.size).where(job_logs.c.job_id == bindparam("job_id"))
_FIRST_OFFSET = (
    select(func.max(_c.offset))
    .where(_c.job_id == bindparam("job_id"), _c.offset <= bindparam("start"))
    .scalar_subquery()
)
_READ_FROM = (
    select(_c.offset, _c.data)
    .where(_c.job_id == bindparam("job_id"), _c.offset >= func.coalesce(_FIRST_OFFSET, 0))
    .order_by(_c.offset)
)
_READ_RANGE = _READ_FROM.where(_c.offset < bindparam("end"))
_INSERT = {
    "postgresql": postgresql.insert(log_chunks).on_conflict_do_nothing(),
    "sqlite": sqlite.insert(log_chunks).on_conflict_do_nothing(),
}


class SqlLogStore:
    def __init__(self, session: SqlSession) -> None:
        self._session = session

    async def size(self, job_id: str) -> int:
        return await self._size(job_id, write=False)

    async def _size(self, job_id: str, *, write: bool) -> int:
        result = await self._session.execute(_LAST_CHUNK, {"job_id": job_id}, write=write)
        row = result.first()
        chunks_end = 0 if row is None else int(row.offset) + int(row.size)
        return max(chunks_end, await self._archived_size(job_id, write=write))

    async def _archived_size(self, job_id: str, *, write: bool) -> int:
        result = await self._session.execute(_ARCHIVED_SIZE, {"job_id": job_id}, write=write)
        archived = result.scalar()
        return 0 if archived is None else int(archived)

    async def append(self, job_id: str, offset: int, data: bytes) -> int:
        if offset < 0:
            raise Conflict(f"log offset {offset} is negative")
        data = bytes(data)
        for _ in range(3):  # a concurrent append can win the race once or twice
            size = await self._size(job_id, write=True)
            if offset < (archived := await self._archived_size(job_id, write=True)):
                raise Conflict(
                    f"log of job {job_id} is {size} bytes long and archived up to byte "
                    f"{archived}; a chunk at {offset} cannot be appended"
                )
            if offset > size:
                raise Conflict(
                    f"log of job {job_id} is {size} bytes long; a chunk at {offset} leaves a gap"
                )
            end = offset + len(data)
            if offset < size:
                stored = await self.read(job_id, offset, min(end, size))
                if stored != data[: len(stored)]:
                    raise Conflict(
                        f"log of job {job_id} ({size} bytes) holds different bytes at {offset}"
                    )
                if end <= size:
                    return size
                tail_offset, tail = size, data[size - offset :]
            else:
                tail_offset, tail = offset, data
            if not tail:
                return size
            inserted = await self._session.execute_write(
                _INSERT[self._session.dialect],
                {"job_id": job_id, "offset": tail_offset, "data": tail},
            )
            if inserted == 1:
                return tail_offset + len(tail)
        raise Conflict(f"log of job {job_id} keeps changing under this append; send it again")

    async def read(self, job_id: str, start: int = 0, end: int | None = None) -> bytes:
        start = max(start, 0)
        if end is not None and end <= start:
            return b""
        params: dict[str, object] = {"job_id": job_id, "start": start}
        if end is None:
            statement = _READ_FROM
        else:
            statement = _READ_RANGE
            params["end"] = end
        rows = (await self._session.execute(statement, params)).all()
        if not rows:
            return b""
        base = int(rows[0].offset)
        buffer = b"".join(row.data for row in rows)
        return buffer[start - base : None if end is None else end - base]
