"""Singleton locks on PostgreSQL: one holder at a time, handed over when the holder dies.

Two ``PostgresLeaderLock`` stand for two servers on one database. PostgreSQL cases skip
without ``FERROUS_TEST_POSTGRES_URL``; the process-wide SQLite lock is checked without it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from ferrous.application.background import run_as_singleton
from ferrous.application.ports import LeaderLock
from ferrous.infrastructure.sql.leader import (
    FERROUS_LOCK_SPACE,
    LocalLeaderLock,
    PostgresLeaderLock,
)

pytestmark = pytest.mark.integration

NAME = "outbox_relay"


@pytest.fixture
async def locks(postgres_engine: AsyncEngine) -> AsyncIterator[tuple[LeaderLock, LeaderLock]]:
    first = PostgresLeaderLock(postgres_engine, check_interval=0.1, check_timeout=2.0)
    second = PostgresLeaderLock(postgres_engine, check_interval=0.1, check_timeout=2.0)
    try:
        yield first, second
    finally:
        await first.close()
        await second.close()


async def _holder_pids(engine: AsyncEngine) -> list[int]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
                "AND classid = :space AND database = "
                "(SELECT oid FROM pg_database WHERE datname = current_database())"
            ),
            {"space": FERROUS_LOCK_SPACE},
        )
        return [row.pid for row in rows]


async def _terminate(engine: AsyncEngine, pid: int) -> None:
    async with engine.connect() as conn:
        await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})


async def test_only_one_of_two_servers_acquires(
    locks: tuple[LeaderLock, LeaderLock], postgres_engine: AsyncEngine
) -> None:
    first, second = locks
    held = await first.try_acquire(NAME)
    assert held is not None
    assert await second.try_acquire(NAME) is None
    assert await first.try_acquire(NAME) is None  # not twice by the same server either
    other = await second.try_acquire("lease_reaper")  # other names are independent
    assert other is not None
    assert len(await _holder_pids(postgres_engine)) == 2
    await other.release()


async def test_release_hands_the_lock_over(locks: tuple[LeaderLock, LeaderLock]) -> None:
    first, second = locks
    held = await first.try_acquire(NAME)
    assert held is not None
    await held.release()
    await held.release()  # idempotent
    taken = await second.try_acquire(NAME)
    assert taken is not None
    assert await first.try_acquire(NAME) is None


async def test_a_terminated_connection_loses_the_lock_and_the_holder_notices(
    locks: tuple[LeaderLock, LeaderLock], postgres_engine: AsyncEngine
) -> None:
    first, second = locks
    held = await first.try_acquire(NAME)
    assert held is not None
    noticing = asyncio.create_task(held.lost())
    await asyncio.sleep(0.3)
    assert not noticing.done()  # alive and checked: still held
    [pid] = await _holder_pids(postgres_engine)
    await _terminate(postgres_engine, pid)

    await asyncio.wait_for(noticing, 5)
    await held.release()  # after a loss: no error
    taken = await second.try_acquire(NAME)
    assert taken is not None


async def test_closing_the_holder_frees_the_lock(locks: tuple[LeaderLock, LeaderLock]) -> None:
    first, second = locks
    assert await first.try_acquire(NAME) is not None
    await first.close()  # a server stopping: its connections close
    assert await second.try_acquire(NAME) is not None


async def test_the_singleton_work_moves_to_the_other_server(
    locks: tuple[LeaderLock, LeaderLock], postgres_engine: AsyncEngine
) -> None:
    running: list[str] = []
    stopped: list[str] = []

    def work(server: str) -> Callable[[], Coroutine[Any, Any, None]]:
        async def run() -> None:
            running.append(server)
            try:
                await asyncio.Event().wait()
            finally:
                stopped.append(server)

        return run

    first, second = locks
    a = asyncio.create_task(run_as_singleton(first, NAME, work("a"), retry=0.1))
    await _until(lambda: running == ["a"])
    b = asyncio.create_task(run_as_singleton(second, NAME, work("b"), retry=0.1))
    await asyncio.sleep(0.5)
    assert running == ["a"]  # b waits

    [pid] = await _holder_pids(postgres_engine)
    await _terminate(postgres_engine, pid)
    await _until(lambda: running == ["a", "b"])
    # a stops its work once its check notices the loss (b may have started just before).
    await _until(lambda: stopped == ["a"], timeout=5)

    a.cancel()
    b.cancel()
    await asyncio.gather(a, b, return_exceptions=True)
    assert sorted(stopped) == ["a", "b"]
    assert await _holder_pids(postgres_engine) == []  # cancelling released the lock


async def test_the_local_lock_is_held_once_per_process() -> None:
    lock = LocalLeaderLock()
    held = await lock.try_acquire(NAME)
    assert held is not None
    assert await lock.try_acquire(NAME) is None
    lost = asyncio.create_task(held.lost())
    await asyncio.sleep(0.05)
    assert not lost.done()
    await held.release()
    await asyncio.wait_for(lost, 1)
    assert await lock.try_acquire(NAME) is not None


async def _until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.05)
