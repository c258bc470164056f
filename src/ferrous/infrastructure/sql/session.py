"""One connection and its transaction, shared by the repositories of a unit of work.

Statements say whether they write. On PostgreSQL that changes nothing (one READ COMMITTED
transaction). On SQLite the reads run in a deferred transaction, and the first write ends
it, takes the engine's write gate and begins ``BEGIN IMMEDIATE`` (see ``sqlite_writes``);
from then on every statement runs in the write transaction, so the unit of work reads its
own writes.

Database errors leave as the domain's: a unique or foreign key violation is ``Conflict``,
a PostgreSQL deadlock or serialization failure is ``StaleState`` (the bus retries), a value
PostgreSQL cannot take (its "data exception" class: a NUL character in text, a number out
of range) is ``InvalidValue``, anything else is ``StorageError``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, NoReturn

from sqlalchemy.engine import CursorResult, Result
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql import Executable

from ferrous.application.ports import StaleState
from ferrous.domain.errors import Conflict, InvalidValue, StorageError
from ferrous.infrastructure.sql.engine import is_sqlite
from ferrous.infrastructure.sql.sqlite_writes import WriteGate, begin_immediate

Params = Mapping[str, Any] | Sequence[Mapping[str, Any]] | None

#: PostgreSQL SQLSTATEs that mean "another transaction got in the way; run it again".
RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})
#: PostgreSQL's class of SQLSTATEs for values it refuses: the caller's to fix, not an outage.
DATA_EXCEPTION_CLASS = "22"


def raise_storage_error(exc: SQLAlchemyError) -> NoReturn:
    """Translate a SQLAlchemy error into the domain's error tree."""
    if isinstance(exc, IntegrityError):
        raise Conflict(f"the change conflicts with stored data: {exc.orig}") from exc
    if isinstance(exc, DBAPIError):
        sqlstate = getattr(exc.orig, "sqlstate", None)
        if sqlstate in RETRYABLE_SQLSTATES:
            raise StaleState(f"concurrent transaction: {exc.orig}") from exc
        if isinstance(sqlstate, str) and sqlstate.startswith(DATA_EXCEPTION_CLASS):
            raise InvalidValue(f"the database cannot store this value: {exc.orig}") from exc
        raise StorageError(f"database error: {exc.orig}") from exc
    raise StorageError(f"database error: {exc}") from exc


class SqlSession:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self._sqlite = is_sqlite(engine)
        self._conn: AsyncConnection | None = None
        self._writing = False
        self._gate_lock: asyncio.Lock | None = None

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    async def execute(
        self, statement: Executable, params: Params = None, *, write: bool = False
    ) -> Result[Any]:
        conn = await self.connection(write)
        try:
            return await conn.execute(statement, params)
        except SQLAlchemyError as exc:
            raise_storage_error(exc)

    async def execute_write(self, statement: Executable, params: Params = None) -> int:
        """Run a write; returns the number of rows it matched."""
        result = await self.execute(statement, params, write=True)
        assert isinstance(result, CursorResult)
        return result.rowcount

    async def connection(self, write: bool = False) -> AsyncConnection:
        conn = self._conn
        if conn is None:
            try:
                conn = self._conn = await self.engine.connect()
            except SQLAlchemyError as exc:
                raise_storage_error(exc)
        if write and self._sqlite and not self._writing:
            await self._begin_write(conn)
        return conn

    async def _begin_write(self, conn: AsyncConnection) -> None:
        if conn.in_transaction():
            await conn.rollback()  # a read snapshot, nothing to lose; it cannot be upgraded
        self._gate_lock = await WriteGate.of(self.engine).acquire()
        self._writing = True
        try:
            raw = await conn.get_raw_connection()
            await begin_immediate(raw.driver_connection)
            await conn.begin()  # SQLAlchemy's side; the begin hook sees the transaction
        except SQLAlchemyError as exc:
            self._release()
            raise_storage_error(exc)
        except BaseException:
            self._release()
            raise

    async def commit(self) -> None:
        if self._conn is None:
            return
        try:
            await self._conn.commit()
        except SQLAlchemyError as exc:
            raise_storage_error(exc)
        finally:
            self._release()

    async def close(self) -> None:
        """Roll back what was not committed and give the connection back."""
        conn, self._conn = self._conn, None
        try:
            if conn is not None:
                await conn.close()
        except SQLAlchemyError as exc:
            raise_storage_error(exc)
        finally:
            self._release()

    def _release(self) -> None:
        self._writing = False
        lock, self._gate_lock = self._gate_lock, None
        if lock is not None:
            lock.release()


@asynccontextmanager
async def write_transaction(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A transaction that reads and then writes, outside a unit of work (the outbox relay).

    Commits on success, rolls back on error. On SQLite it runs behind the write gate with
    ``BEGIN IMMEDIATE``, like a unit of work's writes.
    """
    session = SqlSession(engine)
    try:
        conn = await session.connection(write=True)
        yield conn
        await session.commit()
    finally:
        await session.close()
