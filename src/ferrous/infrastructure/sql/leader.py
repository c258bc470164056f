"""Singleton locks: PostgreSQL session advisory locks, or a process-wide lock for SQLite.

PostgreSQL: each held name has a connection of its own (outside the engine's pool, so a
lock can never go back to the pool with a connection) holding the session-level advisory
lock ``pg_try_advisory_lock(FERROUS_LOCK_SPACE, hashtext(name))``. The two-key form keeps
our keys apart from other applications' single-key locks on the same database. The holder
runs ``SELECT 1`` on that connection every ``check_interval`` seconds; an error or no answer
within ``check_timeout`` means the lock is lost. When a server dies its connections close,
PostgreSQL drops the session and with it the lock, and another server's next
``try_acquire`` gets it. Between a loss and the holder noticing it, up to ``check_interval``
seconds pass in which two servers may both run the work: the singletons tolerate that (the
outbox relay publishes at least once, the reaper and starter use optimistic concurrency).

SQLite: one database file belongs to one server process (SQLite over a network file system
or shared by several ``ferrous serve`` is not supported), so a lock in this process is
enough: ``LocalLeaderLock``.
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.pool import NullPool

from ferrous.application.ports import LeaderLock, Leadership
from ferrous.domain.errors import StorageError
from ferrous.infrastructure.sql.engine import create_engine, is_sqlite

log = structlog.get_logger(__name__)

#: The first key of every Ferrous advisory lock ("FERR" in ASCII).
FERROUS_LOCK_SPACE = 0x46455252

_TRY_LOCK = text("SELECT pg_try_advisory_lock(:space, hashtext(:name))")


class PostgresLeadership:
    def __init__(
        self, conn: AsyncConnection, name: str, check_interval: float, check_timeout: float
    ) -> None:
        self._conn = conn
        self._name = name
        self._check_interval = check_interval
        self._check_timeout = check_timeout
        self._released = False

    @property
    def released(self) -> bool:
        return self._released

    async def lost(self) -> None:
        while True:
            await asyncio.sleep(self._check_interval)
            try:
                async with asyncio.timeout(self._check_timeout):
                    await self._conn.execute(text("SELECT 1"))
            except Exception as exc:
                log.warning("singleton_connection_lost", singleton=self._name, error=str(exc))
                return

    async def release(self) -> None:
        """Close the connection: PostgreSQL ends the session and frees its locks."""
        if self._released:
            return
        self._released = True
        try:
            async with asyncio.timeout(self._check_timeout):
                await self._conn.close()
        except Exception:  # a dead connection: throw it away, the server drops the session
            with contextlib.suppress(Exception):
                await self._conn.invalidate()


class PostgresLeaderLock:
    """``LeaderLock`` on PostgreSQL advisory locks; see the module docstring."""

    def __init__(
        self, engine: AsyncEngine, *, check_interval: float = 1.0, check_timeout: float = 5.0
    ) -> None:
        # Connections of our own, closed for real when released (NullPool).
        self._engine = create_engine(engine.url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
        self._check_interval = check_interval
        self._check_timeout = check_timeout
        self._held: dict[str, PostgresLeadership] = {}

    async def try_acquire(self, name: str) -> Leadership | None:
        if name in self._held and not self._held[name].released:
            return None
        try:
            conn = await self._engine.connect()
        except Exception as exc:
            raise StorageError(f"cannot connect for singleton {name!r}: {exc}") from exc
        try:
            async with asyncio.timeout(self._check_timeout):
                acquired = (
                    await conn.execute(_TRY_LOCK, {"space": FERROUS_LOCK_SPACE, "name": name})
                ).scalar_one()
        except BaseException as exc:
            with contextlib.suppress(Exception):
                await conn.invalidate()
            if isinstance(exc, Exception):
                raise StorageError(f"cannot lock singleton {name!r}: {exc}") from exc
            raise
        if not acquired:
            await conn.close()
            return None
        held = PostgresLeadership(conn, name, self._check_interval, self._check_timeout)
        self._held[name] = held
        return held

    async def close(self) -> None:
        for held in self._held.values():
            await held.release()
        self._held.clear()
        await self._engine.dispose()


class LocalLeadership:
    def __init__(self, owner: LocalLeaderLock, name: str) -> None:
        self._owner = owner
        self._name = name
        self._released = asyncio.Event()

    async def lost(self) -> None:
        """A lock in this process is never lost; this returns only once released."""
        await self._released.wait()

    async def release(self) -> None:
        if not self._released.is_set():
            self._released.set()
            self._owner.forget(self._name)


class LocalLeaderLock:
    """``LeaderLock`` within one process: for SQLite, where one file means one server."""

    def __init__(self) -> None:
        self._held: set[str] = set()

    async def try_acquire(self, name: str) -> Leadership | None:
        if name in self._held:
            return None
        self._held.add(name)
        return LocalLeadership(self, name)

    def forget(self, name: str) -> None:
        self._held.discard(name)

    async def close(self) -> None:
        self._held.clear()


def leader_lock_for(engine: AsyncEngine) -> LeaderLock:
    """The singleton locks that fit the engine's database."""
    return LocalLeaderLock() if is_sqlite(engine) else PostgresLeaderLock(engine)
