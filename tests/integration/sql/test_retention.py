"""The cleanup pass on SQLite and PostgreSQL with a real object store (a folder).

Rows are inserted directly in the tables (with their objects) so that each case states
exactly what exists; the pass must delete those rows and objects and nothing else: nothing of
a build that is not finished, no cache used in the last hour.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Table, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine
from structlog.testing import capture_logs

from ferrous.application import retention as retention_module
from ferrous.application.retention import Retention, RetentionPolicy
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

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@dataclass
class World:
    engine: AsyncEngine
    objects: LocalObjectStore
    project_id: str
    finished: tuple[str, list[str]]  # build id, job ids: a finished build
    running: tuple[str, list[str]]  # a running build

    def retention(self, **policy: Any) -> Retention:
        return Retention(
            SqlRetentionIndex(self.engine), self.objects, RetentionPolicy(**policy), FixedClock(NOW)
        )

    async def _insert(self, table: Table, values: dict[str, Any], size: int) -> str:
        await self.objects.put(values["object_key"], chunks(b"x" * size))
        async with write_transaction(self.engine) as conn:
            await conn.execute(insert(table).values(**values))
        return str(values["object_key"])

    async def artifact(self, build: tuple[str, list[str]], expires_at: datetime | None) -> str:
        build_id, job_ids = build
        job_id = job_ids.pop()  # one artifact per job and kind
        key = f"artifacts/{self.project_id}/{build_id}/{job_id}/archive-{new_id()}.tar.zst"
        values = {
            "id": new_id(),
            "job_id": job_id,
            "build_id": build_id,
            "project_id": self.project_id,
            "kind": "archive",
            "name": "artifacts",
            "object_key": key,
            "size": 10,
            "sha256": "0" * 64,
            "files": 1,
            "entries": None,
            "entries_truncated": False,
            "created_at": NOW - 40 * DAY,
            "expires_at": expires_at,
        }
        return await self._insert(artifacts, values, 10)

    async def cache(self, last_used: timedelta, size: int = 100) -> str:
        key = f"caches/{self.project_id}/unprotected/{new_id()}.tar.zst"
        values = {
            "id": new_id(),
            "project_id": self.project_id,
            "scope": "unprotected",
            "key": new_id(),
            "object_key": key,
            "size": size,
            "sha256": "0" * 64,
            "created_at": NOW - 60 * DAY,
            "last_used_at": NOW - last_used,
        }
        return await self._insert(caches, values, size)

    async def log(self, build: tuple[str, list[str]], age: timedelta, size: int = 100) -> str:
        build_id, job_ids = build
        job_id = job_ids.pop()
        key = f"logs/{self.project_id}/{build_id}/{job_id}-{new_id()}.log.zst"
        values = {
            "job_id": job_id,
            "object_key": key,
            "size": size * 5,
            "stored_size": size,
            "sha256": "0" * 64,
            "frames": [[0, 0]],
            "archived_at": NOW - age,
        }
        return await self._insert(job_logs, values, size)

    async def rows(self, table: Table) -> set[str]:
        async with self.engine.connect() as conn:
            return {str(key) for key in (await conn.scalars(select(table.c.object_key))).all()}

    async def keys(self, prefix: str) -> set[str]:
        return {key async for key in self.objects.keys(prefix)}


@pytest.fixture
async def world(storage: Storage, tmp_path: Path) -> AsyncIterator[World]:
    assert storage.engine is not None
    _, pipeline = await seed_pipeline(storage.uow_factory)
    ids = []
    for number in (1, 2):
        jobs = [job(f"job-{n}") for n in range(40)]
        build = await store_build(storage.uow_factory, new_build(pipeline, number, jobs))
        ids.append((build.id, [j.id for j in build.jobs.values()]))
    async with write_transaction(storage.engine) as conn:
        await conn.execute(update(builds).where(builds.c.id == ids[0][0]).values(status="failed"))
        await conn.execute(update(builds).where(builds.c.id == ids[1][0]).values(status="running"))
    objects = LocalObjectStore(tmp_path / "objects")
    yield World(storage.engine, objects, pipeline.project_id, ids[0], ids[1])
    await objects.aclose()


async def test_expired_artifacts_of_finished_builds_go(world: World) -> None:
    expired = await world.artifact(world.finished, NOW - timedelta(seconds=1))
    kept = {
        await world.artifact(world.finished, NOW + DAY),
        await world.artifact(world.finished, None),  # never expires
        await world.artifact(world.running, NOW - 10 * DAY),  # a job may still download it
    }

    with capture_logs() as logs:
        report = await world.retention().run_pass()

    assert report.deleted == {"artifacts": 1}
    assert report.freed_bytes == {"artifacts": 10}
    assert await world.rows(artifacts) == kept
    assert await world.keys("artifacts/") == kept
    assert expired not in await world.keys("artifacts/")
    [event] = [e for e in logs if e["event"] == "retention_pass"]
    assert event["deleted"] == {"artifacts": 1}


async def test_caches_unused_too_long_go_unless_never_by_age(world: World) -> None:
    old = await world.cache(20 * DAY)
    days_ago = await world.cache(5 * DAY)
    just_used = await world.cache(timedelta(minutes=5))
    kept = {days_ago, just_used}

    report = await world.retention().run_pass()  # cache_max_age None: never by age
    assert report.deleted == {}
    assert await world.rows(caches) == kept | {old}

    report = await world.retention(cache_max_age=14 * DAY).run_pass()
    assert report.deleted == {"caches": 1}
    assert await world.rows(caches) == kept
    assert await world.keys("caches/") == kept

    # even a tiny age never takes a cache used in the last hour
    report = await world.retention(cache_max_age=timedelta(minutes=1)).run_pass()
    assert report.deleted == {"caches": 1}
    assert await world.rows(caches) == {just_used}


async def test_caches_past_the_total_go_least_recently_used_first(world: World) -> None:
    oldest = await world.cache(10 * DAY, size=100)
    older = await world.cache(9 * DAY, size=100)
    recent = await world.cache(2 * DAY, size=100)
    in_use = await world.cache(timedelta(minutes=10), size=500)  # used just now: stays

    report = await world.retention(cache_max_total_bytes=650).run_pass()

    assert report.deleted == {"caches": 2}  # 800 bytes: 150 too many, two oldest go
    assert report.freed_bytes == {"caches": 200}
    assert await world.rows(caches) == {recent, in_use}
    assert await world.keys("caches/") == {recent, in_use}
    assert oldest not in await world.keys("caches/")
    assert older not in await world.keys("caches/")

    report = await world.retention(cache_max_total_bytes=100).run_pass()
    assert await world.rows(caches) == {in_use}  # over the cap, but used in the last hour


async def test_old_logs_and_logs_past_the_total_go_oldest_first(world: World) -> None:
    ancient = await world.log(world.finished, 100 * DAY)
    old = await world.log(world.finished, 20 * DAY, size=300)
    newer = await world.log(world.finished, 3 * DAY, size=300)
    newest = await world.log(world.finished, DAY, size=300)
    running = await world.log(world.running, 200 * DAY, size=300)  # its build is running

    report = await world.retention().run_pass()  # 0 / 0: logs are kept
    assert report.deleted == {}

    report = await world.retention(log_max_age=30 * DAY).run_pass()
    assert report.deleted == {"logs": 1}
    assert await world.rows(job_logs) == {old, newer, newest, running}
    assert ancient not in await world.keys("logs/")

    # 1,200 stored bytes, 700 allowed: the two oldest of finished builds go
    report = await world.retention(log_max_total_bytes=700).run_pass()
    assert report.deleted == {"logs": 2}
    assert report.freed_bytes == {"logs": 600}
    assert await world.rows(job_logs) == {newest, running}
    assert await world.keys("logs/") == {newest, running}


async def test_a_pass_works_in_batches(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retention_module, "BATCH", 3)
    for _ in range(10):
        await world.artifact(world.finished, NOW - DAY)
    kept = await world.artifact(world.running, NOW - DAY)
    report = await world.retention().run_pass()
    assert report.deleted == {"artifacts": 10}
    assert await world.rows(artifacts) == {kept}
    assert await world.keys("artifacts/") == {kept}


async def test_a_failed_object_deletion_leaves_an_orphan_not_a_row(world: World) -> None:
    await world.artifact(world.finished, NOW - DAY)

    class Failing(LocalObjectStore):
        async def delete(self, key: str) -> None:
            raise OSError("disk on fire")

    failing = Retention(
        SqlRetentionIndex(world.engine),
        Failing(world.objects.root),
        RetentionPolicy(),
        FixedClock(NOW),
    )
    report = await failing.run_pass()
    assert report.deleted == {"artifacts": 1}
    assert report.objects_left == 1
    assert await world.rows(artifacts) == set()
    assert len(await world.keys("artifacts/")) == 1  # an orphan: nothing reads it
