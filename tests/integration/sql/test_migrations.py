"""The Alembic migrations produce exactly the schema declared in ``schema.py``."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import NullPool

from ferrous.infrastructure.sql import create_engine, metadata, migrate
from tests.integration.sql.conftest import postgres_admin, postgres_url, with_database


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, metadata))


async def _check(engine: AsyncEngine) -> None:
    await migrate(engine)
    await migrate(engine)  # a second run finds nothing to do
    async with engine.connect() as conn:
        assert await conn.run_sync(_differences) == []
        tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
        version = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar()
    assert tables == set(metadata.tables) | {"alembic_version"}
    assert version == "0016"


async def test_sqlite_migrations_match_the_schema(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'migrated.db'}")
    try:
        await _check(engine)
    finally:
        await engine.dispose()


async def test_postgres_migrations_match_the_schema() -> None:
    url = postgres_url()
    name = f"ferrous_migrations_{uuid.uuid4().hex[:12]}"
    await postgres_admin(url, f'CREATE DATABASE "{name}"')
    engine = create_engine(with_database(url, name), poolclass=NullPool)
    try:
        await _check(engine)
    finally:
        await engine.dispose()
        await postgres_admin(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def test_the_comparison_sees_a_difference(tmp_path: Path) -> None:
    """Guard against a comparison that always answers "no difference"."""
    engine = create_engine(f"sqlite:///{tmp_path / 'drifted.db'}")
    try:
        await migrate(engine)
        async with engine.begin() as conn:
            await conn.execute(text("DROP INDEX ix_jobs_claim"))
            await conn.execute(text("ALTER TABLE agents ADD COLUMN extra INTEGER"))
        async with engine.connect() as conn:
            kinds = sorted(str(diff[0]) for diff in await conn.run_sync(_differences))
        assert kinds == ["add_index", "remove_column"]
    finally:
        await engine.dispose()
