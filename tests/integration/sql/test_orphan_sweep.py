"""The orphan sweep on SQLite and PostgreSQL with a real object store (a folder).

Objects are aged by their files' mtimes; rows are inserted directly (as in
test_retention.py) so each case states what names what. The sweep must delete exactly the
old objects that no row names, whatever state the rows' builds are in.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Table, insert, update
from sqlalchemy.ext.asyncio import AsyncEngine

from ferrous.application.retention import BATCH, ORPHAN_GRACE, Retention, RetentionPolicy
from ferrous.domain.ids import new_id
from ferrous.infrastructure.sql import write_transaction
from ferrous.infrastructure.sql.retention_queries import SqlRetentionIndex
from ferrous.infrastructure.sql.schema import artifacts, builds, caches, job_logs
from ferrous.infrastructure.storage.local import LocalObjectStore
from tests.integration.sql.conftest import Storage
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
        return {key async for key in self.objects.keys("")}


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
    named = {
        await world.row(artifacts, "artifacts/p/b/j/archive-1.tar.zst"),
        await world.row(caches, "caches/p/unprotected/k-1.tar.zst"),
        await world.row(job_logs, "logs/p/b/j-1.log.zst"),
    }
    unnamed = [f"artifacts/p/b/j/archive-x{n}.tar.zst" for n in range(BATCH - len(named))]
    index = world.index()
    assert await index.referenced_objects([*unnamed, *sorted(named)]) == named  # a full batch
    assert await index.referenced_objects(unnamed[:3]) == set()
    assert await index.referenced_objects([]) == set()
    assert await index.referenced_objects(["logs/p/b/j-1.log.zst"]) == {"logs/p/b/j-1.log.zst"}


async def test_the_sweep_deletes_old_objects_no_row_names(world: World) -> None:
    orphans = {
        await world.object("artifacts/p/b/j1/archive-1.tar.zst", OLD, 100),
        await world.object("caches/p/protected/k-1.tar.zst", OLD, 20),
        await world.object("logs/p/b/j1-1.log.zst", OLD, 3),
    }
    kept = {
        await world.row(artifacts, await world.object("artifacts/p/b/j2/archive.tar.zst", OLD)),
        await world.row(caches, await world.object("caches/p/protected/k-2.tar.zst", OLD)),
        await world.row(job_logs, await world.object("logs/p/b/j2-2.log.zst", OLD)),
        # no row yet, but young: an upload whose row is on its way
        await world.object("artifacts/p/b/j3/archive.tar.zst", YOUNG),
        await world.object("elsewhere/x", OLD),  # not a prefix rows name objects under
    }
    retention = Retention(world.index(), world.objects, RetentionPolicy(), FixedClock(NOW))

    report = await retention.run_pass()

    assert (report.swept, report.orphans, report.orphan_bytes) == (True, 3, 123)
    assert await world.keys() == kept
    assert orphans.isdisjoint(await world.keys())
