"""Engines: URLs, SQLite settings, and SQLite's one writer under concurrent units of work."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from ferrous.application.ports import StaleState
from ferrous.domain.errors import StorageError
from ferrous.domain.project import Project
from ferrous.infrastructure.sql import create_engine, migrate, sql_uow_factory
from ferrous.infrastructure.sql.engine import async_url
from tests.integration.sql.factories import T0, at, job, new_build, seed_pipeline, store_build


@pytest.mark.parametrize(
    ("given", "driver"),
    [
        ("sqlite:///ferrous.db", "sqlite+aiosqlite"),
        ("sqlite+aiosqlite:///ferrous.db", "sqlite+aiosqlite"),
        ("postgresql://u:p@db:5432/ci", "postgresql+asyncpg"),
        ("postgres://u@db/ci", "postgresql+asyncpg"),
        ("postgresql+asyncpg://u@db/ci", "postgresql+asyncpg"),
    ],
)
def test_urls_get_their_asyncio_driver(given: str, driver: str) -> None:
    url = async_url(given)
    assert url.drivername == driver
    assert url.database in ("ferrous.db", "ci")


def test_other_databases_are_refused() -> None:
    with pytest.raises(StorageError, match="unsupported"):
        async_url("mysql://u@db/ci")


@pytest.mark.parametrize(("inline", "busy_timeout"), [(True, 50), (False, 30000)])
async def test_sqlite_settings(tmp_path: Path, inline: bool, busy_timeout: int) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'settings.db'}", sqlite_inline=inline)
    try:
        async with engine.connect() as conn:
            values = [
                (await conn.execute(text(f"PRAGMA {name}"))).scalar()
                for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
            ]
    finally:
        await engine.dispose()
    assert values == ["wal", 1, 1, busy_timeout]


def test_in_memory_sqlite_is_refused() -> None:
    with pytest.raises(StorageError, match="in-memory"):
        create_engine("sqlite://")


async def test_sqlite_times_come_back_aware_and_naive_ones_are_refused(
    sqlite_engine: AsyncEngine,
) -> None:
    uow_factory = sql_uow_factory(sqlite_engine)
    async with uow_factory() as uow:
        naive = Project.create(name="naive", repo_url="/x", default_branch="main", now=T0)
        naive.created_at = datetime(2026, 1, 1)  # the point of the test
        with pytest.raises(StorageError, match="naive"):
            await uow.projects.add(naive)
    project, _ = await seed_pipeline(uow_factory)
    async with uow_factory() as uow:
        stored = await uow.projects.get(project.id)
    assert stored.created_at == T0
    assert stored.created_at.tzinfo is not None


@pytest.mark.parametrize("inline", [True, False])
async def test_sqlite_waits_for_another_process_without_blocking_the_loop(
    tmp_path: Path, inline: bool
) -> None:
    path = tmp_path / "locked.db"
    engine = create_engine(f"sqlite:///{path}", sqlite_inline=inline)
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        await migrate(engine)
        _, pipeline = await seed_pipeline(sql_uow_factory(engine))
        other.execute("BEGIN IMMEDIATE")  # another process writes for a while
        loop = asyncio.get_running_loop()
        loop.call_later(0.4, other.execute, "COMMIT")
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticking = asyncio.create_task(ticker())
        started = loop.time()
        async with sql_uow_factory(engine)() as uow:
            assert await uow.pipelines.allocate_number(pipeline.id) == 1
            await uow.commit()
        waited = loop.time() - started
        ticking.cancel()
        assert waited >= 0.35
        assert ticks >= 8  # the event loop kept running while the unit of work waited
    finally:
        other.close()
        await engine.dispose()


@pytest.mark.parametrize("inline", [True, False])
async def test_writers_of_one_engine_queue_without_blocking_the_loop(
    tmp_path: Path, inline: bool
) -> None:
    """A writer that waits for another (slow) unit of work of this process waits on the
    write gate, not in SQLite's busy handler on the event loop's thread."""
    engine = create_engine(f"sqlite:///{tmp_path / 'gate.db'}", sqlite_inline=inline)
    try:
        await migrate(engine)
        uow_factory = sql_uow_factory(engine)
        _, pipeline = await seed_pipeline(uow_factory)
        holding = asyncio.Event()

        async def slow_writer() -> int:
            async with uow_factory() as uow:
                number = await uow.pipelines.allocate_number(pipeline.id)
                holding.set()
                await asyncio.sleep(0.4)  # e.g. a use case awaiting something else
                await uow.commit()
                return number

        async def second_writer() -> int:
            await holding.wait()
            async with uow_factory() as uow:
                number = await uow.pipelines.allocate_number(pipeline.id)
                await uow.commit()
                return number

        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticking = asyncio.create_task(ticker())
        numbers = await asyncio.gather(slow_writer(), second_writer())
        ticking.cancel()
        assert numbers == [1, 2]
        assert ticks >= 20  # ~40 if never blocked; ~5 when blocked in the busy handler
    finally:
        await engine.dispose()


async def _busy_writers(engines: list[AsyncEngine]) -> None:
    """Read-then-write units of work from many tasks: none may fail on a lock.

    40 tasks start one job each of 8 builds (5 per build, so they also collide on versions
    and retry), append a log chunk and allocate a build number.
    """
    factories = [sql_uow_factory(engine) for engine in engines]
    _, pipeline = await seed_pipeline(factories[0])
    work_items = []
    for number in range(1, 9):
        jobs = [job(f"j{i}", stage_index=0) for i in range(5)]
        build = await store_build(factories[0], new_build(pipeline, number, jobs))
        work_items += [(build.id, j.id) for j in build.jobs.values()]

    async def work(i: int) -> None:
        uow_factory = factories[i % len(factories)]
        build_id, job_id = work_items[i]
        while True:
            try:
                async with uow_factory() as uow:
                    b = await uow.builds.get(build_id)
                    await asyncio.sleep(0)  # let the others read too
                    b.start_job(job_id, f"agent-{i}", at(1))
                    await uow.builds.save(b)
                    await uow.logs.append(job_id, 0, b"started\n")
                    await uow.pipelines.allocate_number(pipeline.id)
                    await uow.commit()
                    return
            except StaleState:
                await asyncio.sleep(0)

    await asyncio.wait_for(asyncio.gather(*(work(i) for i in range(40))), 120)
    async with factories[-1]() as uow:
        for build_id in {build_id for build_id, _ in work_items}:
            stored = await uow.builds.get(build_id)
            assert {j.attempt for j in stored.jobs.values()} == {1}
            assert stored.version == 5
        assert await uow.pipelines.allocate_number(pipeline.id) == 41
        assert [await uow.logs.size(job_id) for _, job_id in work_items] == [8] * 40


@pytest.mark.parametrize("inline", [True, False])
async def test_sqlite_serializes_writers_of_one_engine(tmp_path: Path, inline: bool) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'one.db'}", sqlite_inline=inline)
    try:
        await migrate(engine)
        await _busy_writers([engine])
    finally:
        await engine.dispose()


@pytest.mark.parametrize("inline", [True, False])
async def test_sqlite_serializes_writers_of_two_engines(tmp_path: Path, inline: bool) -> None:
    """Two engines stand for two processes: BEGIN IMMEDIATE and busy_timeout order them."""
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    engines = [create_engine(url, sqlite_inline=inline), create_engine(url, sqlite_inline=inline)]
    try:
        await migrate(engines[0])
        await _busy_writers(engines)
    finally:
        for engine in engines:
            await engine.dispose()
