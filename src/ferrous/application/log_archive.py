"""Finished jobs' logs move from database chunks to one compressed object each.

While a job runs its log is chunks in the database (appends at byte offsets, read live).
Once the job is finished, ``LogArchive.archive`` streams the chunks (a page at a time, never
the whole log) through the ``LogCodec`` (framed zstd) into a fresh object, then in one
transaction writes the ``job_logs`` row and deletes the chunks it covers, then deletes the
previous object if there was one. A crash before that commit leaves the chunks (still read)
and an orphan object; the ``job_logs`` row moves only by compare-and-set on the previous
object's key, so two servers archiving the same log at once cannot both win.

A job retried after its log was archived appends chunks after the archived size (the claim
sends that size as ``log_offset``); its next archive is rebuilt from the old object's bytes
and the new chunks. Reads join the two: ``[0, archived size)`` from the object (only the
frames the range needs), the rest from the chunks.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import structlog

from ferrous.application.object_keys import log_key
from ferrous.application.ports import Clock
from ferrous.application.storage_ports import ObjectStore
from ferrous.domain.errors import Conflict, CorruptObject, NotFound

log = structlog.get_logger(__name__)

#: ``(raw_offset, stored_offset)`` of one frame: where it starts in the log and in the object.
Frame = tuple[int, int]
#: Reads the stored bytes ``[start, end)`` of an archived log's object.
FetchStored = Callable[[int, int], Awaitable[AsyncIterator[bytes]]]

CHUNK_PAGE = 32  # chunk rows per query while archiving
SWEEP_BATCH = 50  # jobs per query of the sweep
SWEEP_GRACE = timedelta(seconds=30)  # the finishing server's own archiving goes first


@dataclass(frozen=True, slots=True, kw_only=True)
class ArchivedLog:
    object_key: str
    size: int  # log bytes
    stored_size: int  # object bytes
    sha256: str  # of the object's bytes
    frames: tuple[Frame, ...]
    archived_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class JobLogPlace:
    """Where a job's log object goes, and whether the job may be archived now."""

    project_id: str
    build_id: str
    finished: bool


class CompressedLog(Protocol):
    """A log being compressed: ``chunks()`` yields the stored bytes once; afterwards the
    attributes describe them."""

    frames: list[Frame]
    size: int
    stored_size: int

    @property
    def sha256(self) -> str: ...

    def chunks(self) -> AsyncIterator[bytes]: ...


class LogCodec(Protocol):
    def compress(self, raw: AsyncIterable[bytes]) -> CompressedLog: ...

    def read(
        self,
        fetch: FetchStored,
        frames: Sequence[Frame],
        *,
        size: int,
        stored_size: int,
        start: int,
        end: int,
    ) -> AsyncIterator[bytes]:
        """Bytes ``[start, end)`` of the archived log, fetching only the frames they need;
        ``CorruptObject`` for a frame that does not decompress to its length."""
        ...


class LogArchiveIndex(Protocol):
    """The database side: ``job_logs`` rows and the chunks they replace."""

    async def place(self, job_id: str) -> JobLogPlace | None: ...

    async def archived(self, job_id: str) -> ArchivedLog | None: ...

    async def size(self, job_id: str) -> int:
        """The log's length: the archived size or the end of the last chunk, the larger
        (one statement, so an archive committing meanwhile cannot be seen half)."""
        ...

    async def chunk_page(self, job_id: str, start: int, limit: int) -> list[tuple[int, bytes]]:
        """Up to ``limit`` chunks at offsets ``>= start``, in order: ``(offset, data)``."""
        ...

    async def read_chunks(self, job_id: str, start: int, end: int | None) -> bytes | None:
        """The chunks' bytes ``[start, end)``; None when no chunk holds byte ``start``
        (past the end of the log, or archived away since the caller looked)."""
        ...

    async def save(self, job_id: str, archived: ArchivedLog, previous_key: str | None) -> bool:
        """In one transaction: the row (inserted when ``previous_key`` is None, else moved
        from that object) and the deletion of the chunks below ``archived.size``. False, and
        nothing changed, when the row is not as expected (someone else archived it)."""
        ...

    async def finished_with_chunks(
        self, finished_before: datetime, after: str | None, limit: int
    ) -> list[str]:
        """Jobs finished before then whose log still has chunks (not archived yet), by id,
        from the first id past ``after``."""
        ...


class LogArchive:
    """Reads logs (archive + chunks) and archives finished jobs' logs."""

    def __init__(
        self, index: LogArchiveIndex, objects: ObjectStore, codec: LogCodec, clock: Clock
    ) -> None:
        self._index = index
        self._objects = objects
        self._codec = codec
        self._clock = clock

    async def size(self, job_id: str) -> int:
        return await self._index.size(job_id)

    async def read(self, job_id: str, start: int = 0, end: int | None = None) -> bytes:
        """Bytes ``[start, end)`` of the log (to its end when ``end`` is None)."""
        start = max(start, 0)
        if end is not None and end <= start:
            return b""
        archived = await self._index.archived(job_id)
        for retry in (False, True):
            try:
                return await self._read(job_id, archived, start, end)
            except _Rearchived as moved:
                # archived (again) between our reads: its chunks or its old object are gone
                if retry:
                    raise Conflict(f"the log of job {job_id} keeps moving; read it again") from None
                archived = moved.now
        raise AssertionError("unreachable")

    async def _read(
        self, job_id: str, archived: ArchivedLog | None, start: int, end: int | None
    ) -> bytes:
        archived_size = 0 if archived is None else archived.size
        parts: list[bytes] = []
        if archived is not None and start < archived.size:
            stop = archived.size if end is None else min(end, archived.size)
            try:
                async for piece in self._archived_bytes(job_id, archived, start, stop):
                    parts.append(piece)
            except NotFound:
                await self._check_unchanged(job_id, archived)
                raise CorruptObject(
                    f"the archived log of job {job_id} is missing from the object store "
                    f"({archived.object_key}); servers that share a database must share "
                    "the storage too (FERROUS_STORAGE_URL)"
                ) from None
        if end is None or end > archived_size:
            tail = await self._index.read_chunks(job_id, max(start, archived_size), end)
            if tail is None:
                await self._check_unchanged(job_id, archived)
            else:
                parts.append(tail)
        return b"".join(parts)

    async def _check_unchanged(self, job_id: str, archived: ArchivedLog | None) -> None:
        now = await self._index.archived(job_id)
        if now != archived:
            raise _Rearchived(now)

    async def _archived_bytes(
        self, job_id: str, archived: ArchivedLog, start: int, end: int
    ) -> AsyncIterator[bytes]:
        async def fetch(stored_start: int, stored_end: int) -> AsyncIterator[bytes]:
            if stored_start == 0 and stored_end >= archived.stored_size:
                # a whole read: the store checks the bytes against the row's checksum
                return await self._objects.read(archived.object_key, sha256=archived.sha256)
            return await self._objects.read(archived.object_key, start=stored_start, end=stored_end)

        pieces = self._codec.read(
            fetch,
            archived.frames,
            size=archived.size,
            stored_size=archived.stored_size,
            start=start,
            end=end,
        )
        try:
            async for piece in pieces:
                yield piece
        except CorruptObject as exc:
            raise CorruptObject(f"the archived log of job {job_id} is corrupt: {exc}") from exc

    async def archive(self, job_id: str) -> ArchivedLog | None:
        """Archive the finished job's log (again, when chunks were appended since); None
        when there is nothing to do (not finished, no new chunks, or archived by another
        server meanwhile)."""
        place = await self._index.place(job_id)
        if place is None or not place.finished:
            return None
        previous = await self._index.archived(job_id)
        archived_size = 0 if previous is None else previous.size
        if not await self._index.chunk_page(job_id, archived_size, 1):
            return None
        key = log_key(place.project_id, place.build_id, job_id)
        compressed = self._codec.compress(self._log_bytes(job_id, previous))
        stored = await self._objects.put(key, compressed.chunks())
        archived = ArchivedLog(
            object_key=key,
            size=compressed.size,
            stored_size=stored.size,
            sha256=compressed.sha256,
            frames=tuple(compressed.frames),
            archived_at=self._clock.now(),
        )
        try:
            saved = await self._index.save(
                job_id, archived, None if previous is None else previous.object_key
            )
        except BaseException:
            await self._forget(key)
            raise
        if not saved:
            await self._forget(key)
            log.info("job_log_archived_elsewhere", job_id=job_id)
            return None
        if previous is not None:
            await self._forget(previous.object_key)
        log.info(
            "job_log_archived",
            job_id=job_id,
            size=archived.size,
            stored_size=archived.stored_size,
            frames=len(archived.frames),
            rearchived=previous is not None,
        )
        return archived

    async def _log_bytes(self, job_id: str, previous: ArchivedLog | None) -> AsyncIterator[bytes]:
        """The whole log as a stream: the previous archive's bytes, then the chunks."""
        offset = 0
        if previous is not None:
            async for piece in self._archived_bytes(job_id, previous, 0, previous.size):
                yield piece
            offset = previous.size
        while True:
            page = await self._index.chunk_page(job_id, offset, CHUNK_PAGE)
            for chunk_offset, data in page:
                if chunk_offset != offset:
                    raise Conflict(f"the log of job {job_id} changed while being archived")
                yield data
                offset += len(data)
            if len(page) < CHUNK_PAGE:
                return

    async def _forget(self, key: str) -> None:
        try:
            await self._objects.delete(key)
        except Exception:  # an orphan object: harmless, the cleanup's sweep may take it
            log.warning("log_object_not_deleted", object_key=key, exc_info=True)

    async def sweep(self) -> int:
        """Archive the logs of finished jobs still in chunks (their server died before it
        archived them, or the job finished without a ``JobCompleted``); how many."""
        before = self._clock.now() - SWEEP_GRACE
        done, after = 0, None
        while True:
            jobs = await self._index.finished_with_chunks(before, after, SWEEP_BATCH)
            for job_id in jobs:
                try:
                    if await self.archive(job_id) is not None:
                        done += 1
                except Exception:  # the next job's archive may well work: go on
                    log.exception("job_log_archive_failed", job_id=job_id)
            if len(jobs) < SWEEP_BATCH:
                if done:
                    log.info("job_logs_swept", archived=done)
                return done
            after = jobs[-1]


class _Rearchived(Exception):
    """The ``job_logs`` row changed under a read."""

    def __init__(self, now: ArchivedLog | None) -> None:
        super().__init__()
        self.now = now
