"""The artifact and cache rows (SQLite, PostgreSQL, memory): one contract.

What a job's context reads (its lease, its build's scope, the expiry settings), replacing
rows under the lease check, the members' listing, and the use stamps of caches. The same
tests run the application's artifacts on a real ``LocalObjectStore`` over each database.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from ferrous.application.artifact_ports import (
    Artifact,
    ArtifactRepository,
    Cache,
    CacheRepository,
)
from ferrous.application.artifacts import Artifacts
from ferrous.archive import ArchiveEntry, pack
from ferrous.domain.build import Build
from ferrous.domain.errors import Conflict, NotFound
from ferrous.domain.ids import new_id
from ferrous.infrastructure.memory.artifacts import (
    InMemoryArtifactRepository,
    InMemoryCacheRepository,
)
from ferrous.infrastructure.sql.artifact_repository import SqlArtifactRepository
from ferrous.infrastructure.sql.cache_repository import SqlCacheRepository
from ferrous.infrastructure.storage.local import LocalObjectStore
from tests.integration.sql.conftest import Storage
from tests.integration.sql.factories import T0, at, job, new_build, seed_pipeline, store_build

AGENT = "agent-1"


@pytest.fixture
def artifacts_repo(storage: Storage) -> ArtifactRepository:
    if storage.store is not None:
        return InMemoryArtifactRepository(storage.store)
    assert storage.engine is not None
    return SqlArtifactRepository(storage.engine)


@pytest.fixture
def caches_repo(storage: Storage) -> CacheRepository:
    if storage.store is not None:
        return InMemoryCacheRepository(storage.store)
    assert storage.engine is not None
    return SqlCacheRepository(storage.engine)


async def running_build(storage: Storage, *, protected: bool = False) -> Build:
    """A build whose first job runs on AGENT; its project keeps artifacts for 3 days."""
    project, pipeline = await seed_pipeline(storage.uow_factory, f"p{new_id()[-8:]}")
    async with storage.uow_factory() as uow:
        stored = await uow.projects.get(project.id)
        stored.artifacts_expire_in = "3 days"
        await uow.projects.save(stored)
        await uow.commit()
    compile_job = job("compile", stage_index=0)
    compile_job[1]["artifacts"] = {"paths": ["out"], "expire_in": "1 week"}
    build = new_build(pipeline, 1, [compile_job, job("unit", stage_index=1)])
    build.protected_ref = protected
    await store_build(storage.uow_factory, build)
    async with storage.uow_factory() as uow:
        loaded = await uow.builds.get(build.id)
        loaded.start_job(loaded.jobs["compile"].id, AGENT, at(10))
        await uow.builds.save(loaded)
        await uow.commit()
    return loaded


def artifact(build: Build, kind: str = "archive", **changes: Any) -> Artifact:
    fields: dict[str, Any] = {
        "id": new_id(),
        "job_id": build.jobs["compile"].id,
        "build_id": build.id,
        "project_id": build.project_id,
        "kind": kind,
        "name": "out",
        "object_key": f"artifacts/{new_id()}.tar.zst",
        "size": 10,
        "sha256": "a" * 64,
        "files": 2,
        "entries_truncated": False,
        "created_at": at(20),
        "expires_at": at(20) + timedelta(days=7),
        **changes,
    }
    return Artifact(**fields)


def cache(build: Build, key: str = "deps", **changes: Any) -> Cache:
    fields: dict[str, Any] = {
        "id": new_id(),
        "project_id": build.project_id,
        "scope": "unprotected",
        "key": key,
        "object_key": f"caches/{new_id()}.tar.zst",
        "size": 10,
        "sha256": "b" * 64,
        "created_at": at(20),
        "last_used_at": at(20),
        **changes,
    }
    return Cache(**fields)


ENTRIES = [
    ArchiveEntry("out", 0, "dir"),
    ArchiveEntry("out/app", 5, "file"),
    ArchiveEntry("out/latest", 0, "symlink", "app"),
]


async def test_a_jobs_context(storage: Storage, artifacts_repo: ArtifactRepository) -> None:
    build = await running_build(storage, protected=True)
    compile_id, unit_id = build.jobs["compile"].id, build.jobs["unit"].id

    context = await artifacts_repo.job(compile_id)
    assert (context.build_id, context.project_id, context.agent_id, context.status) == (
        build.id,
        build.project_id,
        AGENT,
        "running",
    )
    assert (context.expire_in, context.project_expire_in) == ("1 week", "3 days")
    assert (context.protected_ref, context.cache_scope) == (True, "protected")
    unit = await artifacts_repo.job(unit_id)
    assert (unit.agent_id, unit.expire_in) == (None, None)
    with pytest.raises(NotFound):
        await artifacts_repo.job(new_id())


async def test_rows_are_replaced_under_the_lease(
    storage: Storage, artifacts_repo: ArtifactRepository
) -> None:
    build = await running_build(storage)
    job_id = build.jobs["compile"].id
    first = artifact(build)
    assert await artifacts_repo.replace(first, ENTRIES, agent_id=AGENT) is None
    junit = artifact(build, "junit", created_at=at(21), expires_at=None)
    assert await artifacts_repo.replace(junit, [], agent_id=AGENT) is None

    assert await artifacts_repo.get(job_id, "archive") == first
    assert await artifacts_repo.list_for_job(job_id) == [first, junit]
    assert await artifacts_repo.entries(first.id) == ENTRIES

    second = artifact(build, files=1, entries_truncated=True, created_at=at(30))
    assert await artifacts_repo.replace(second, ENTRIES[:1], agent_id=AGENT) == first
    assert await artifacts_repo.get(job_id, "archive") == second
    assert await artifacts_repo.entries(second.id) == ENTRIES[:1]
    assert await artifacts_repo.entries(first.id) == []

    with pytest.raises(Conflict):
        await artifacts_repo.replace(artifact(build), [], agent_id="agent-2")
    with pytest.raises(Conflict):  # a job that is not running
        await artifacts_repo.replace(
            artifact(build, job_id=build.jobs["unit"].id), [], agent_id=AGENT
        )
    assert await artifacts_repo.get(job_id, "archive") == second
    assert await artifacts_repo.get(build.jobs["unit"].id, "archive") is None


async def test_caches_by_project_scope_and_key(
    storage: Storage, caches_repo: CacheRepository
) -> None:
    build = await running_build(storage)
    job_id = build.jobs["compile"].id
    first = cache(build)
    assert await caches_repo.replace(first, job_id=job_id, agent_id=AGENT) is None
    protected = cache(build, scope="protected")
    assert await caches_repo.replace(protected, job_id=job_id, agent_id=AGENT) is None

    assert await caches_repo.get(build.project_id, "unprotected", "deps") == first
    assert await caches_repo.get(build.project_id, "protected", "deps") == protected
    assert await caches_repo.get(build.project_id, "unprotected", "other") is None

    second = cache(build, created_at=at(40), last_used_at=at(40))
    assert await caches_repo.replace(second, job_id=job_id, agent_id=AGENT) == first
    with pytest.raises(Conflict):
        await caches_repo.replace(cache(build), job_id=job_id, agent_id="agent-2")

    await caches_repo.touch(second.id, at(100))
    await caches_repo.touch(second.id, at(90))  # never backwards
    found = await caches_repo.get(build.project_id, "unprotected", "deps")
    assert found is not None
    assert found.last_used_at == at(100)


async def test_concurrent_saves_of_one_key_keep_one_row(
    storage: Storage, caches_repo: CacheRepository
) -> None:
    build = await running_build(storage)
    job_id = build.jobs["compile"].id
    saves = [cache(build, created_at=at(n)) for n in range(6)]
    replaced = await asyncio.gather(
        *(caches_repo.replace(c, job_id=job_id, agent_id=AGENT) for c in saves)
    )
    found = await caches_repo.get(build.project_id, "unprotected", "deps")
    assert found is not None
    assert found.id in {c.id for c in saves}
    # every save but one replaced another: the replaced ones are all gone, none twice
    gone = [r.id for r in replaced if r is not None]
    assert len(gone) == 5
    assert len(set(gone)) == 5
    assert found.id not in gone


async def chunks(data: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(data), 4096):
        yield data[start : start + 4096]


async def test_uploads_on_a_local_store(
    storage: Storage, artifacts_repo: ArtifactRepository, tmp_path: Path
) -> None:
    build = await running_build(storage)
    job_id = build.jobs["compile"].id
    objects = LocalObjectStore(tmp_path / "objects")
    artifacts = Artifacts(
        repository=artifacts_repo,
        objects=objects,
        clock=type("Clock", (), {"now": staticmethod(lambda: T0)})(),
        scratch=tmp_path / "tmp",
        max_bytes=1 << 30,
        default_expire_in="30 days",
    )
    (tmp_path / "src" / "out").mkdir(parents=True)
    (tmp_path / "src" / "out" / "app").write_bytes(b"binary" * 10_000)
    packed = pack(tmp_path / "src", ["out/app"], tmp_path / "a.tar.zst")
    data = packed.path.read_bytes()

    for _ in range(2):
        uploaded = await artifacts.upload(
            agent_id=AGENT,
            job_id=job_id,
            kind="archive",
            name="out",
            chunks=chunks(data),
            sha256=hashlib.sha256(data).hexdigest(),
        )
    stored = uploaded.artifact
    assert stored.expires_at == T0 + timedelta(weeks=1)
    assert [key async for key in objects.keys("artifacts/")] == [stored.object_key]
    download = await artifacts.download(job_id, "archive")
    assert b"".join([c async for c in download.chunks]) == data
    assert [e.path for e in await artifacts_repo.entries(stored.id)] == ["out/app"]
