"""SQLite without a thread hop per call: an aiosqlite-shaped connection that runs inline.

aiosqlite runs each call (cursor, execute, fetch, close: four per statement) in a worker
thread, and each hop costs 50-80 µs of thread wake-up and GIL hand-over, while the SQLite call
itself, on a WAL database with ``synchronous=NORMAL``, takes a few microseconds. So Ferrous
hands SQLAlchemy's aiosqlite dialect (``async_creator``) this shim, whose coroutines call
``sqlite3`` directly on the event loop's thread.

What can block the loop is bounded: writers of this process queue on the engine's write gate
(asyncio) before ``BEGIN IMMEDIATE``, so the only lock wait left is on another *process*,
which ``busy_timeout`` caps at ``INLINE_BUSY_TIMEOUT_MS`` before ``begin_immediate`` backs
off asynchronously and tries again; readers never wait for writers in WAL mode. A commit that
triggers SQLite's automatic (passive) WAL checkpoint, about every 4 MB written, takes a few
milliseconds longer.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from types import TracebackType
from typing import Any, Self

#: How long one SQLite call may wait for another process's lock, blocking the event loop.
INLINE_BUSY_TIMEOUT_MS = 50


class InlineCursor:
    __slots__ = ("_cursor",)

    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value

    async def execute(self, operation: str, parameters: Sequence[Any] = ()) -> Self:
        self._cursor.execute(operation, parameters)
        return self

    async def executemany(self, operation: str, parameters: Sequence[Sequence[Any]]) -> Self:
        self._cursor.executemany(operation, parameters)
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(self._cursor.arraysize if size is None else size)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()

    async def __aiter__(self) -> AsyncIterator[Any]:
        for row in self._cursor:
            yield row


class _CursorContext:
    """``connection.cursor()`` as aiosqlite has it: awaitable and an async context manager."""

    __slots__ = ("_connection",)

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    async def __aenter__(self) -> InlineCursor:
        return InlineCursor(self._connection.cursor())

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None


class InlineConnection:
    """The part of ``aiosqlite.Connection`` that SQLAlchemy's adapter uses."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._conn: sqlite3.Connection | None = connection

    @property
    def _connection(self) -> sqlite3.Connection | None:  # checked by the adapter
        return self._conn

    def _live(self) -> sqlite3.Connection:
        if self._conn is None:
            raise ValueError("no active connection")
        return self._conn

    @property
    def isolation_level(self) -> str | None:
        return self._live().isolation_level

    @property
    def in_transaction(self) -> bool:
        return self._live().in_transaction

    def execute_now(self, statement: str) -> None:
        """A statement without results, synchronously (``BEGIN``: see ``sqlite_writes``)."""
        self._live().execute(statement)

    async def execute(self, statement: str) -> None:
        self._live().execute(statement)

    def cursor(self) -> _CursorContext:
        return _CursorContext(self._live())

    async def commit(self) -> None:
        self._live().commit()

    async def rollback(self) -> None:
        self._live().rollback()

    async def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def stop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._live().create_function(*args, **kwargs)


def inline_creator(path: str, pragmas: Sequence[str]) -> Callable[[], Any]:
    """An ``async_creator`` for ``create_async_engine``: connections in autocommit mode
    (Ferrous emits BEGIN itself) with ``pragmas`` applied."""

    async def connect() -> InlineConnection:
        connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        for pragma in pragmas:
            connection.execute(pragma)
        connection.execute(f"PRAGMA busy_timeout={INLINE_BUSY_TIMEOUT_MS}")
        return InlineConnection(connection)

    return connect
