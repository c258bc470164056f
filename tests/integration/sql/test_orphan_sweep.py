"""The orphan sweep on SQLite and PostgreSQL with a real object store (a folder).

Objects are aged by their files' mtimes; rows are inserted directly (as in
test_retention.py) so each case states what names what. The sweep must delete exactly the
old objects of our shapes that no row names, whatever state the rows' builds are in, and only
in a store that the database's installation has claimed. The installation's id comes from
migration 0016: one per database, kept when the database is migrated again.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Table, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import NullPool

from ferrous.application.artifact_ports import ARCHIVE, PROTECTED, UNPROTECTED
from ferrous.application.object_keys import artifact_key, cache_key, log_key
from ferrous.application.retention import (
    BATCH,
    ORPHAN_GRACE,
    ORPHAN_INTERVAL,
    Retention,
    RetentionPolicy,
)
from ferrous.application.store_marker import MARKER_KEY, StoreMarker, read_marker, write_marker
from ferrous.domain.errors import StorageError
from ferrous.domain.ids import new_id
from ferrous.infrastructure.sql import create_engine, migrate, write_transaction
from ferrous.infrastructure.sql.retention_queries import SqlRetentionIndex
from ferrous.infrastructure.sql.schema import artifacts, builds, caches, installation, job_logs
from ferrous.infrastructure.storage.local import LocalObjectStore
from tests.integration.sql.conftest import Storage, postgres_admin, postgres_url, with_database
from tests.integration.sql.factories import (
    FixedClock,
    chunks,
    job,
    new_build,
    seed_pipeline,
    store_build,
)

NOW = datetime.now(UTC)
OLD = NOW - ORPHAN_GRACE - timedelta(hours=1)
YOUNG = NOW - ORPHAN_GRACE + timedelta(hours=1)


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@dataclass
class World:
    engine: AsyncEngine
    objects: LocalObjectStore
    project_id: str
    build_id: str
    job_ids: list[str]

    async def object(self, key: str, stored: datetime, size: int = 10) -> str:
        await self.objects.put(key, chunks(b"x" * size))
        moment = stored.timestamp()
        os.utime(self.objects.root / key, (moment, moment))
        return key

    async def row(self, table: Table, key: str) -> str:
        """A row of ``table`` naming ``key``."""
        values: dict[str, Any]
        if table is artifacts:
            values = {
                "id": new_id(),
                "job_id": self.job_ids.pop(),
                "build_id": self.build_id,
                "project_id": self.project_id,
                "kind": "archive",
                "name": "artifacts",
                "size": 10,
                "files": 1,
                "entries": None,
                "entries_truncated": False,
                "created_at": OLD,
                "expires_at": None,
            }
        elif table is caches:
            values = {
                "id": new_id(),
                "project_id": self.project_id,
                "scope": "unprotected",
                "key": new_id(),
                "size": 10,
                "created_at": OLD,
                "last_used_at": NOW,
            }
        else:
            values = {
                "job_id": self.job_ids.pop(),
                "size": 50,
                "stored_size": 10,
                "frames": [[0, 0]],
                "archived_at": OLD,
            }
        async with write_transaction(self.engine) as conn:
            await conn.execute(insert(table).values(object_key=key, sha256="0" * 64, **values))
        return key

    def index(self) -> SqlRetentionIndex:
        return SqlRetentionIndex(self.engine)

    async def keys(self) -> set[str]:
        return {key async for key in self.objects.keys("")} - {MARKER_KEY}

    async def claim(self) -> None:
        """The store as this installation claimed it an interval ago (a sweep is due)."""
        ours = await self.index().installation_id()
        await write_marker(
            self.objects, StoreMarker(installation_id=ours, claimed_at=NOW - ORPHAN_INTERVAL)
        )

    def artifact(self) -> str:
        return artifact_key(self.project_id, self.build_id, new_id(), ARCHIVE)

    def cache(self, scope: str = UNPROTECTED) -> str:
        return cache_key(self.project_id, scope, new_id())

    def log(self) -> str:
        return log_key(self.project_id, self.build_id, new_id())


@pytest.fixture
async def world(storage: Storage, tmp_path: Path) -> AsyncIterator[World]:
    assert storage.engine is not None
    _, pipeline = await seed_pipeline(storage.uow_factory)
    jobs = [job(f"job-{n}") for n in range(10)]
    build = await store_build(storage.uow_factory, new_build(pipeline, 1, jobs))
    async with write_transaction(storage.engine) as conn:  # rows of a running build count too
        await conn.execute(update(builds).where(builds.c.id == build.id).values(status="running"))
    objects = LocalObjectStore(tmp_path / "objects")
    yield World(
        storage.engine, objects, pipeline.project_id, build.id, [j.id for j in build.jobs.values()]
    )
    await objects.aclose()


async def test_referenced_objects_are_those_a_row_names(world: World) -> None:
    log = world.log()
    named = {
        await world.row(artifacts, world.artifact()),
        await world.row(caches, world.cache()),
        await world.row(job_logs, log),
    }
    unnamed = [world.artifact() for _ in range(BATCH - len(named))]
    index = world.index()
    assert await index.referenced_objects([*unnamed, *sorted(named)]) == named  # a full batch
    assert await index.referenced_objects(unnamed[:3]) == set()
    assert await index.referenced_objects([]) == set()
    assert await index.referenced_objects([log]) == {log}


async def test_the_sweep_deletes_old_objects_of_our_shapes_no_row_names(world: World) -> None:
    await world.claim()
    orphans = {
        await world.object(world.artifact(), OLD, 100),
        await world.object(world.cache(PROTECTED), OLD, 20),
        await world.object(world.log(), OLD, 3),
    }
    kept = {
        await world.row(artifacts, await world.object(world.artifact(), OLD)),
        await world.row(caches, await world.object(world.cache(PROTECTED), OLD)),
        await world.row(job_logs, await world.object(world.log(), OLD)),
        # no row yet, but young: an upload whose row is on its way
        await world.object(world.artifact(), YOUNG),
        await world.object("elsewhere/x", OLD),  # not a prefix rows name objects under
        # another program's, in a shared store: old, no row, but not of our shapes
        await world.object("logs/access-2026-11-27", OLD),
        await world.object("logs/2026-11-27-10-15-30-ABCDEF0123456789", OLD),
        await world.object(f"artifacts/{world.project_id}/notes.txt", OLD),
    }
    retention = Retention(world.index(), world.objects, RetentionPolicy(), FixedClock(NOW))

    report = await retention.run_pass()

    assert (report.swept, report.orphans, report.orphan_bytes) == (True, 3, 123)
    assert await world.keys() == kept
    assert orphans.isdisjoint(await world.keys())
    marker = await read_marker(world.objects)
    assert marker is not None
    assert marker.last_sweep == NOW


async def test_a_store_claimed_by_another_installation_is_not_swept(world: World) -> None:
    other = new_id()
    await write_marker(
        world.objects, StoreMarker(installation_id=other, claimed_at=NOW - ORPHAN_INTERVAL)
    )
    theirs = {await world.object(world.artifact(), OLD), await world.object(world.log(), OLD)}
    retention = Retention(world.index(), world.objects, RetentionPolicy(), FixedClock(NOW))

    report = await retention.run_pass()

    assert (report.swept, report.orphans, report.shared_with) == (False, 0, (other,))
    assert await world.keys() == theirs
    marker = await read_marker(world.objects)
    assert marker is not None
    assert (marker.installation_id, marker.others) == (
        other,
        (await world.index().installation_id(),),
    )


async def test_the_installation_id_is_one_per_database_and_kept(world: World) -> None:
    first = await world.index().installation_id()
    assert str(uuid.UUID(first)) == first
    assert await SqlRetentionIndex(world.engine).installation_id() == first
    async with world.engine.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(installation))).scalar() == 1
        created = (await conn.execute(select(installation.c.created_at))).scalar_one()
    assert created.tzinfo is not None
    assert abs(datetime.now(UTC) - created) < timedelta(days=1)
    await migrate(world.engine)  # a server's start: nothing to do, the id stays
    assert await world.index().installation_id() == first
    async with world.engine.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(installation))).scalar() == 1


async def test_an_empty_installation_table_is_a_storage_error(world: World) -> None:
    async with write_transaction(world.engine) as conn:
        await conn.execute(delete(installation))
    with pytest.raises(StorageError, match="installation"):
        await world.index().installation_id()


async def test_each_new_database_gets_an_id_of_its_own(backend: str, tmp_path: Path) -> None:
    ids = []
    for n in range(2):
        if backend == "sqlite":
            engine = create_engine(f"sqlite:///{tmp_path / f'fresh-{n}.db'}")
            name = None
        else:
            url = postgres_url()
            name = f"ferrous_installation_{uuid.uuid4().hex[:12]}"
            await postgres_admin(url, f'CREATE DATABASE "{name}"')
            engine = create_engine(with_database(url, name), poolclass=NullPool)
        try:
            await migrate(engine)
            await migrate(engine)  # twice: still one id
            ids.append(await SqlRetentionIndex(engine).installation_id())
            async with engine.connect() as conn:
                count = select(func.count()).select_from(installation)
                assert (await conn.execute(count)).scalar() == 1
        finally:
            await engine.dispose()
            if name is not None:
                await postgres_admin(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    assert len(set(ids)) == 2
