"""Storage fixtures: one fresh, migrated database per test, on each backend.

Parametrized tests take ``storage`` (or ``uow_factory`` / ``queries``) and run once per
backend in ``BACKENDS``: SQLite (a file in ``tmp_path``), PostgreSQL and memory. PostgreSQL
needs ``FERROUS_TEST_POSTGRES_URL`` (e.g. ``postgresql+asyncpg://postgres@127.0.0.1:5432/
postgres``): without it those cases skip; with it a broken server fails them. A migrated
template database is made once per session (per xdist worker) and each test gets
``CREATE DATABASE ... TEMPLATE`` of it, dropped afterwards.

Other test packages reuse these fixtures by importing them into their own ``conftest.py``::

    from tests.integration.sql.conftest import (  # noqa: F401
        backend, postgres_engine, postgres_template, queries, sqlite_engine, storage,
        uow_factory,
    )

``backend`` is parametrized; narrow it for one test with
``@pytest.mark.parametrize("backend", ["sqlite", "postgres"])`` or for a module by
redefining the fixture. ``Storage`` also gives the engine (SQL) or the store (memory) and the
outbox's unpublished events; ``factories`` builds projects, pipelines, builds and agents.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from ferrous.application.ports import UnitOfWork
from ferrous.application.queries import Queries
from ferrous.infrastructure.memory import InMemoryQueries, InMemoryStore, memory_uow_factory
from ferrous.infrastructure.sql import (
    OutboxMessage,
    SqlQueries,
    create_engine,
    fetch_unpublished,
    migrate,
    sql_uow_factory,
    write_transaction,
)

POSTGRES_URL_VARIABLE = "FERROUS_TEST_POSTGRES_URL"
BACKENDS = ("sqlite", "postgres", "memory")


def postgres_url() -> str:
    """The configured server URL, or a skip that says how to configure it."""
    url = os.environ.get(POSTGRES_URL_VARIABLE)
    if not url:
        pytest.skip(
            f"{POSTGRES_URL_VARIABLE} is not set (e.g. "
            "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres): PostgreSQL cases skipped"
        )
    return url


def with_database(url: str, database: str) -> str:
    return make_url(url).set(database=database).render_as_string(hide_password=False)


async def postgres_admin(url: str, *statements: str) -> None:
    engine = create_async_engine(
        make_url(url).set(drivername="postgresql+asyncpg"),
        isolation_level="AUTOCOMMIT",
        poolclass=NullPool,
    )
    try:
        async with engine.connect() as conn:
            for statement in statements:
                await conn.execute(text(statement))
    finally:
        await engine.dispose()


async def _create_template(url: str, name: str) -> None:
    await postgres_admin(
        url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"'
    )
    engine = create_engine(with_database(url, name), poolclass=NullPool)
    try:
        await migrate(engine)
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    """The name of a migrated database that test databases are cloned from."""
    url = postgres_url()
    name = f"ferrous_template_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
    asyncio.run(_create_template(url, name))
    yield name
    asyncio.run(postgres_admin(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
async def postgres_engine(postgres_template: str) -> AsyncIterator[AsyncEngine]:
    """An engine on a fresh, migrated PostgreSQL database of its own."""
    url = postgres_url()
    name = f"ferrous_test_{uuid.uuid4().hex[:16]}"
    await postgres_admin(url, f'CREATE DATABASE "{name}" TEMPLATE "{postgres_template}"')
    engine = create_engine(with_database(url, name))
    try:
        yield engine
    finally:
        await engine.dispose()
        await postgres_admin(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def sqlite_engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """An engine on a fresh, migrated SQLite file."""
    engine = create_engine(f"sqlite:///{tmp_path / 'ferrous.db'}")
    try:
        await migrate(engine)
        yield engine
    finally:
        await engine.dispose()


@dataclass(frozen=True, slots=True, kw_only=True)
class Storage:
    """One backend, ready: what a test needs to use it and to look behind it."""

    backend: str
    uow_factory: Callable[[], UnitOfWork]
    queries: Queries
    engine: AsyncEngine | None = None  # the SQL backends
    store: InMemoryStore | None = None  # the memory backend

    async def unpublished(self) -> list[OutboxMessage]:
        """The outbox's unpublished events, oldest first."""
        if self.store is not None:
            return self.store.fetch_unpublished(1000)
        assert self.engine is not None
        async with write_transaction(self.engine) as conn:
            return await fetch_unpublished(conn, 1000)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def storage(backend: str, request: pytest.FixtureRequest) -> Storage:
    if backend == "memory":
        store = InMemoryStore()
        return Storage(
            backend=backend,
            uow_factory=memory_uow_factory(store),
            queries=InMemoryQueries(store),
            store=store,
        )
    engine: AsyncEngine = request.getfixturevalue(f"{backend}_engine")
    return Storage(
        backend=backend,
        uow_factory=sql_uow_factory(engine),
        queries=SqlQueries(engine),
        engine=engine,
    )


@pytest.fixture
def uow_factory(storage: Storage) -> Callable[[], UnitOfWork]:
    return storage.uow_factory


@pytest.fixture
def queries(storage: Storage) -> Queries:
    return storage.queries
