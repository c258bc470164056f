"""SQLite's one writer: how a unit of work becomes the writer without "database is locked".

Two connections that both read and then try to write fail with "database is locked", and
``busy_timeout`` cannot help: a WAL read snapshot cannot be upgraded once another write
committed. So Ferrous never upgrades. A transaction begins deferred (reads only); on its first
write, ``SqlSession`` ends it, takes this process's ``WriteGate`` (an asyncio lock: FIFO, no
busy polling, the event loop stays free) and then ``begin_immediate`` takes SQLite's write
lock, which orders writers of other processes too, waiting for them asynchronously.
Optimistic version checks catch what changed between the reads and the write, exactly as
with PostgreSQL's READ COMMITTED.

SQLAlchemy still thinks it begins every transaction: the ``begin`` hook emits a deferred
``BEGIN`` unless the connection is already in the write transaction begun here.
"""

from __future__ import annotations

import asyncio
import sqlite3
import weakref
from typing import Any, ClassVar

from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from ferrous.domain.errors import StorageError
from ferrous.infrastructure.sql.sqlite_inline import InlineConnection

#: The longest a writer waits for another (process's) writer, and aiosqlite's busy_timeout.
BUSY_TIMEOUT_MS = 30_000


def install_begin_hook(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        raw = conn.connection.driver_connection
        if raw is None or raw.in_transaction:
            return  # begun by begin_immediate
        if isinstance(raw, InlineConnection):
            raw.execute_now("BEGIN")  # straight to sqlite3, none of the statement machinery
        else:
            conn.exec_driver_sql("BEGIN")


async def begin_immediate(raw: Any) -> None:
    """``BEGIN IMMEDIATE`` on a raw driver connection (inline or aiosqlite), waiting without
    blocking the event loop while another process holds the write lock."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + BUSY_TIMEOUT_MS / 1000
    delay = 0.002
    while True:
        try:
            cursor = await raw.execute("BEGIN IMMEDIATE")
            if cursor is not None:
                await cursor.close()
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise StorageError(f"database error: {exc}") from exc
            if loop.time() > deadline:
                raise StorageError(
                    f"the SQLite database stayed locked by another process for "
                    f"{BUSY_TIMEOUT_MS // 1000} s"
                ) from exc
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.1)


class WriteGate:
    """The one-writer-at-a-time lock of a SQLite engine, per event loop."""

    _gates: ClassVar[weakref.WeakKeyDictionary[Any, WriteGate]] = weakref.WeakKeyDictionary()

    def __init__(self) -> None:
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )

    @classmethod
    def of(cls, engine: AsyncEngine) -> WriteGate:
        key = engine.sync_engine
        gate = cls._gates.get(key)
        if gate is None:
            gate = cls._gates[key] = cls()
        return gate

    def lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        lock = self._locks.get(loop)
        if lock is None:
            lock = self._locks[loop] = asyncio.Lock()
        return lock

    async def acquire(self, timeout: float = BUSY_TIMEOUT_MS / 1000) -> asyncio.Lock:
        lock = self.lock()
        try:
            async with asyncio.timeout(timeout):
                await lock.acquire()
        except TimeoutError:
            raise StorageError(
                f"the SQLite database stayed busy for {timeout:.0f} s: a unit of work "
                "holds the write lock too long (or one was opened inside another)"
            ) from None
        return lock
