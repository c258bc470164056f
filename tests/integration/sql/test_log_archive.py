"""Archived logs on SQLite and PostgreSQL with a real object store (a folder).

The archive moves a finished job's chunks into one framed zstd object and its ``job_logs``
row; reads join archive and chunks; a retried job appends after the archive and is archived
again; a crash or a race leaves the log readable.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from ferrous.application.log_archive import ArchivedLog, LogArchive
from ferrous.domain.errors import Conflict, CorruptObject
from ferrous.infrastructure.sql import SqlQueries, write_transaction
from ferrous.infrastructure.sql.log_archive_index import SqlLogArchiveIndex
from ferrous.infrastructure.sql.schema import job_logs, jobs, log_chunks
from ferrous.infrastructure.storage.local import LocalObjectStore
from ferrous.infrastructure.storage.log_frames import ZstdLogFrames
from tests.integration.sql.conftest import Storage
from tests.integration.sql.factories import job, new_build, seed_pipeline, store_build

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
FRAME = 1000  # small frames: a few kilobytes of log make many of them


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class Clock:
    def now(self) -> datetime:
        return NOW


@dataclass
class Setup:
    storage: Storage
    engine: AsyncEngine
    objects: LocalObjectStore
    root: Path
    archive: LogArchive
    project_id: str
    build_id: str
    job_id: str
    other_job_id: str

    def archive_with(self, index: SqlLogArchiveIndex) -> LogArchive:
        return LogArchive(index, self.objects, ZstdLogFrames(frame_bytes=FRAME), Clock())

    async def append(self, offset: int, data: bytes, job_id: str | None = None) -> int:
        async with self.storage.uow_factory() as uow:
            size = await uow.logs.append(job_id or self.job_id, offset, data)
            await uow.commit()
            return size

    async def write_log(self, data: bytes, *, start: int = 0, job_id: str | None = None) -> None:
        """``data`` as chunks of varied sizes, like an agent ships them."""
        rng = random.Random(len(data))
        offset = 0
        while offset < len(data):
            piece = data[offset : offset + rng.randint(1, 700)]
            await self.append(start + offset, piece, job_id)
            offset += len(piece)

    async def set_status(self, status: str, job_id: str | None = None) -> None:
        finished = NOW - timedelta(hours=1) if status in {"success", "failed"} else None
        async with write_transaction(self.engine) as conn:
            await conn.execute(
                update(jobs)
                .where(jobs.c.id == (job_id or self.job_id))
                .values(status=status, finished_at=finished)
            )

    async def chunk_count(self, job_id: str | None = None) -> int:
        async with self.engine.connect() as conn:
            count = await conn.scalar(
                select(func.count()).where(log_chunks.c.job_id == (job_id or self.job_id))
            )
        return int(count or 0)

    async def row(self) -> ArchivedLog | None:
        return await SqlLogArchiveIndex(self.engine).archived(self.job_id)

    async def keys(self) -> list[str]:
        return sorted([key async for key in self.objects.keys("logs/")])


@pytest.fixture
async def setup(storage: Storage, tmp_path: Path) -> AsyncIterator[Setup]:
    assert storage.engine is not None
    _, pipeline = await seed_pipeline(storage.uow_factory)
    build = await store_build(
        storage.uow_factory, new_build(pipeline, 1, [job("compile"), job("test")])
    )
    first, second = (j.id for j in build.jobs.values())
    objects = LocalObjectStore(tmp_path / "objects")
    index = SqlLogArchiveIndex(storage.engine)
    yield Setup(
        storage=storage,
        engine=storage.engine,
        objects=objects,
        root=tmp_path / "objects",
        archive=LogArchive(index, objects, ZstdLogFrames(frame_bytes=FRAME), Clock()),
        project_id=build.project_id,
        build_id=build.id,
        job_id=first,
        other_job_id=second,
    )
    await objects.aclose()


def log_text(lines: int, first: int = 0) -> bytes:
    return b"".join(
        f"[{n:05d}] step {n % 13}: {'ok' if n % 7 else 'wärning ✓'} {'.' * (n % 40)}\n".encode()
        for n in range(first, first + lines)
    )


async def assert_reads(archive: LogArchive, job_id: str, data: bytes) -> None:
    assert await archive.size(job_id) == len(data)
    assert await archive.read(job_id) == data
    rng = random.Random(7)
    edges = [0, 1, FRAME - 1, FRAME, FRAME + 1, len(data) - 1, len(data), len(data) + 5]
    ranges = [(a, b) for a in edges for b in edges]
    ranges += [tuple(sorted(rng.sample(range(len(data) + 10), 2))) for _ in range(150)]
    for start, end in ranges:
        assert await archive.read(job_id, start, end) == data[start:end], (start, end)
        assert await archive.read(job_id, start) == data[start:]


async def test_archiving_moves_the_log_into_one_object(setup: Setup) -> None:
    data = log_text(400)
    await setup.write_log(data)
    await setup.set_status("success")
    chunks = await setup.chunk_count()
    assert chunks > 20
    await assert_reads(setup.archive, setup.job_id, data)  # from chunks

    archived = await setup.archive.archive(setup.job_id)

    assert archived is not None
    assert archived == await setup.row()
    assert archived.size == len(data)
    assert len(archived.frames) == -(-len(data) // FRAME)
    prefix = f"logs/{setup.project_id}/{setup.build_id}/{setup.job_id}-"
    assert archived.object_key.startswith(prefix)
    assert archived.object_key.endswith(".log.zst")
    assert await setup.keys() == [archived.object_key]
    stat = await setup.objects.stat(archived.object_key)
    assert stat is not None
    assert stat.size == archived.stored_size < len(data)
    assert await setup.chunk_count() == 0
    await assert_reads(setup.archive, setup.job_id, data)  # from the archive
    async with setup.storage.uow_factory() as uow:
        assert await uow.logs.size(setup.job_id) == len(data)  # a retry's claim starts there
    view = await SqlQueries(setup.engine).get_job(setup.job_id)
    assert view.log_size == len(data)
    assert await setup.archive.archive(setup.job_id) is None  # nothing new to archive


async def test_only_finished_jobs_with_a_log_are_archived(setup: Setup) -> None:
    await setup.write_log(b"still running\n")
    await setup.set_status("running")
    assert await setup.archive.archive(setup.job_id) is None
    assert await setup.chunk_count() == 1
    await setup.set_status("success", setup.other_job_id)
    assert await setup.archive.archive(setup.other_job_id) is None  # no log at all
    assert await setup.archive.archive("no-such-job") is None
    assert await setup.keys() == []


async def test_a_retried_job_appends_after_the_archive_and_is_archived_again(
    setup: Setup,
) -> None:
    first = log_text(120)
    await setup.write_log(first)
    await setup.set_status("failed")
    old = await setup.archive.archive(setup.job_id)
    assert old is not None
    await setup.set_status("running")  # a person retried it; the claim's log_offset:
    async with setup.storage.uow_factory() as uow:
        assert await uow.logs.size(setup.job_id) == len(first)
    with pytest.raises(Conflict, match=f"archived up to byte {len(first)}"):
        await setup.append(len(first) - 5, first[-5:])  # below the archive: refused
    with pytest.raises(Conflict):
        await setup.append(len(first) + 1, b"gap")
    second = log_text(150, first=1000)
    await setup.write_log(second, start=len(first))
    whole = first + second
    await assert_reads(setup.archive, setup.job_id, whole)  # archive + chunks
    assert await setup.archive.archive(setup.job_id) is None  # running: not yet

    await setup.set_status("success")
    new = await setup.archive.archive(setup.job_id)

    assert new is not None
    assert new.object_key != old.object_key
    assert new.size == len(whole)
    assert await setup.keys() == [new.object_key]  # the old object is gone
    assert await setup.chunk_count() == 0
    await assert_reads(setup.archive, setup.job_id, whole)


async def test_a_crash_between_put_and_commit_leaves_the_chunks_readable(setup: Setup) -> None:
    data = log_text(200)
    await setup.write_log(data)
    await setup.set_status("success")

    class Crash(Exception):
        pass

    class CrashingIndex(SqlLogArchiveIndex):
        async def save(self, job_id: str, archived: ArchivedLog, previous_key: str | None) -> bool:
            raise Crash()

    class NoCleanup(LocalObjectStore):
        async def delete(self, key: str) -> None:
            return None  # the process died: nothing cleans up after it

    crashing = LogArchive(
        CrashingIndex(setup.engine), NoCleanup(setup.root), ZstdLogFrames(FRAME), Clock()
    )
    with pytest.raises(Crash):
        await crashing.archive(setup.job_id)

    orphans = await setup.keys()
    assert len(orphans) == 1  # an object no row names
    assert await setup.row() is None
    await assert_reads(setup.archive, setup.job_id, data)  # from the chunks, as before
    archived = await setup.archive.archive(setup.job_id)  # the sweep, later
    assert archived is not None
    assert await setup.keys() == sorted([*orphans, archived.object_key])
    await assert_reads(setup.archive, setup.job_id, data)


async def test_two_servers_archiving_at_once_store_one_archive(setup: Setup) -> None:
    data = log_text(300)
    await setup.write_log(data)
    await setup.set_status("success")
    other = setup.archive_with(SqlLogArchiveIndex(setup.engine))
    results = await asyncio.gather(setup.archive.archive(setup.job_id), other.archive(setup.job_id))
    winners = [r for r in results if r is not None]
    assert len(winners) >= 1
    row = await setup.row()
    assert row is not None
    assert row.object_key in {w.object_key for w in winners}
    assert await setup.keys() == [row.object_key]  # the loser deleted its object
    await assert_reads(setup.archive, setup.job_id, data)


async def test_a_reader_racing_the_archive_reads_it_again_from_the_archive(setup: Setup) -> None:
    data = log_text(200)
    await setup.write_log(data)
    await setup.set_status("success")

    class ArchivedMeanwhile(SqlLogArchiveIndex):
        """Archives the log between the reader's look at the row and at the chunks."""

        raced = False

        async def read_chunks(self, job_id: str, start: int, end: int | None) -> bytes | None:
            if not self.raced:
                self.raced = True
                await setup.archive.archive(job_id)
            return await super().read_chunks(job_id, start, end)

    racing = ArchivedMeanwhile(setup.engine)
    assert await setup.archive_with(racing).read(setup.job_id, 10, 3000) == data[10:3000]
    assert racing.raced

    # a reader holding the row of an archive that is replaced (and deleted) meanwhile
    await setup.set_status("running")
    more = log_text(50, first=5000)
    await setup.write_log(more, start=len(data))
    await setup.set_status("success")

    class RearchivedMeanwhile(SqlLogArchiveIndex):
        raced = False

        async def archived(self, job_id: str) -> ArchivedLog | None:
            row = await super().archived(job_id)
            if not self.raced:
                self.raced = True
                await setup.archive.archive(job_id)  # moves the row, deletes the old object
            return row

    stale = RearchivedMeanwhile(setup.engine)
    whole = data + more
    assert await setup.archive_with(stale).read(setup.job_id, 5, len(whole)) == whole[5:]
    assert stale.raced
    assert await setup.chunk_count() == 0


async def test_a_corrupt_archive_is_reported_with_the_job(setup: Setup) -> None:
    data = log_text(200)
    await setup.write_log(data)
    await setup.set_status("success")
    archived = await setup.archive.archive(setup.job_id)
    assert archived is not None
    path = setup.root / archived.object_key
    stored = bytearray(path.read_bytes())
    third = archived.frames[2][1]
    stored[third + 20 : third + 28] = b"\x00" * 8  # damage frame 2's compressed data
    path.write_bytes(bytes(stored))

    assert await setup.archive.read(setup.job_id, 0, FRAME) == data[:FRAME]  # frame 0 is fine
    with pytest.raises(CorruptObject, match=setup.job_id):
        await setup.archive.read(setup.job_id, 2 * FRAME, 2 * FRAME + 10)
    with pytest.raises(CorruptObject, match=setup.job_id):
        await setup.archive.read(setup.job_id)  # a whole read checks the sha256 too
    path.unlink()
    with pytest.raises(CorruptObject, match="missing"):
        await setup.archive.read(setup.job_id, 0, 10)


async def test_the_sweep_archives_finished_jobs_left_in_chunks(setup: Setup) -> None:
    first, second = log_text(30), log_text(40, first=100)
    await setup.write_log(first)
    await setup.write_log(second, job_id=setup.other_job_id)
    await setup.set_status("success")
    await setup.set_status("running", setup.other_job_id)

    assert await setup.archive.sweep() == 1
    assert await setup.chunk_count() == 0
    assert await setup.chunk_count(setup.other_job_id) > 0  # running: left alone
    await setup.set_status("failed", setup.other_job_id)
    assert await setup.archive.sweep() == 1
    assert await setup.archive.sweep() == 0
    await assert_reads(setup.archive, setup.job_id, first)
    await assert_reads(setup.archive, setup.other_job_id, second)
    async with setup.engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(job_logs)) == 2
