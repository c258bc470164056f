"""The database's readiness probe on real databases: ready only at this server's head
revision, "not migrated" (saying where it is) otherwise, "unreachable" when nothing answers."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from ferrous.application.readiness import ReadinessCheck
from ferrous.domain.errors import NotReady
from ferrous.infrastructure.sql import create_engine, migrate
from ferrous.infrastructure.sql.migrate import alembic_config
from ferrous.infrastructure.sql.readiness import SqlReadinessProbe
from tests.integration.sql.conftest import postgres_admin, postgres_url, with_database
from tests.pg_cluster import free_port


@pytest.fixture(params=["sqlite", "postgres"])
async def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """The URL of a database with no schema at all."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'ready.db'}"
        return
    url = postgres_url()
    name = f"ferrous_ready_{uuid.uuid4().hex[:12]}"
    await postgres_admin(url, f'CREATE DATABASE "{name}"')
    try:
        yield with_database(url, name)
    finally:
        await postgres_admin(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def migrate_to(url: str, revision: str) -> None:
    engine = create_engine(url, poolclass=NullPool)
    try:
        await migrate(engine, revision)
    finally:
        await engine.dispose()


async def set_version(url: str, revision: str) -> None:
    engine = create_engine(url, poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": revision})
    finally:
        await engine.dispose()


def older_revision() -> tuple[str, str]:
    """(head, the revision just before it)."""
    script = ScriptDirectory.from_config(alembic_config())
    head = script.get_current_head()
    assert head is not None
    before = script.get_revision(head).down_revision
    assert isinstance(before, str)
    return head, before


async def test_ready_at_the_head_revision_only(empty_database: str) -> None:
    head, before = older_revision()
    probe = SqlReadinessProbe(empty_database)
    try:
        assert probe.head == head
        with pytest.raises(
            NotReady, match=f"^not migrated: the database has no schema yet .*{head}"
        ):
            await probe()
        await migrate_to(empty_database, before)
        with pytest.raises(NotReady) as older:
            await probe()
        assert older.value.message == (
            f"not migrated: the database is at {before}, this server needs {head}"
        )
        await migrate_to(empty_database, "head")
        await probe()  # ready
        await set_version(empty_database, "9999_from_the_future")
        with pytest.raises(NotReady, match="9999_from_the_future, which this server does not know"):
            await probe()
    finally:
        await probe.close()


async def test_a_server_on_an_older_schema_reports_not_migrated(tmp_path: Path) -> None:
    """What ``/readyz`` says for it: through the readiness check, as the server runs it."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
    head, before = older_revision()
    await migrate_to(url, before)
    probe = SqlReadinessProbe(url)
    check = ReadinessCheck({"database": probe}, closers=[probe.close])
    try:
        result = await check.check()
    finally:
        await check.aclose()
    assert not result.ready
    assert result.checks == {
        "database": f"not migrated: the database is at {before}, this server needs {head}"
    }


async def test_nothing_listening_is_unreachable_and_fast() -> None:
    url = postgres_url()
    nobody = make_url(url).set(host="127.0.0.1", port=free_port())
    probe = SqlReadinessProbe(nobody)
    check = ReadinessCheck({"database": probe}, timeout=2.0, closers=[probe.close])
    try:
        result = await check.check()
    finally:
        await check.aclose()
    assert result.checks["database"].startswith("unreachable: ")
    assert "no answer within" not in result.checks["database"]  # refused at once


async def test_an_idle_probe_holds_no_connection() -> None:
    url = postgres_url()
    name = f"ferrous_ready_{uuid.uuid4().hex[:12]}"
    await postgres_admin(url, f'CREATE DATABASE "{name}"')
    database = with_database(url, name)
    probe = SqlReadinessProbe(database)
    try:
        await migrate_to(database, "head")
        for _ in range(3):
            await probe()
        engine = create_engine(url, poolclass=NullPool)
        try:
            async with engine.connect() as conn:
                held = await conn.scalar(
                    text("SELECT count(*) FROM pg_stat_activity WHERE datname = :name"),
                    {"name": name},
                )
        finally:
            await engine.dispose()
        assert held == 0
    finally:
        await probe.close()
        await postgres_admin(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
