"""The artifacts of each ref's latest successful build outlive their expiry.

The reads (memory, SQLite, PostgreSQL: ``locked`` on the rows, hence served and listed) and
the cleanup (SQLite, PostgreSQL) decide alike: an artifact is kept while its build is the
newest successful build of its pipeline and ref and its project keeps latest artifacts; a
newer success of that ref, or the setting turned off, releases it.

Every case starts from the same builds, each with one expired artifact:

    pipeline default, ref main:    #1 success, #2 success (latest), #3 failed, #4 running
    pipeline default, ref release: #5 failed (its only build)
    pipeline default, ref feature: #6 success (newer than main's, but another ref)
    pipeline nightly, ref main:    #1 success (latest of its own pipeline)
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select, update

from ferrous.application.artifact_ports import Artifact, ArtifactRepository
from ferrous.application.artifact_reads import list_artifacts
from ferrous.application.artifacts import Artifacts
from ferrous.application.retention import Retention, RetentionPolicy
from ferrous.domain.build import Build
from ferrous.domain.errors import NotFound
from ferrous.domain.ids import new_id
from ferrous.domain.project import Pipeline
from ferrous.domain.statuses import BuildStatus
from ferrous.infrastructure.memory.artifacts import InMemoryArtifactRepository
from ferrous.infrastructure.sql import retention_queries, write_transaction
from ferrous.infrastructure.sql.artifact_repository import SqlArtifactRepository
from ferrous.infrastructure.sql.retention_queries import SqlRetentionIndex
from ferrous.infrastructure.sql.schema import artifacts, builds
from ferrous.infrastructure.storage.local import LocalObjectStore
from tests.integration.sql.conftest import Storage
from tests.integration.sql.factories import T0, job, new_build, seed_pipeline, store_build

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
EXPIRED = NOW - timedelta(days=1)
SQL = pytest.mark.parametrize("backend", ["sqlite", "postgres"])


class Clock:
    def now(self) -> datetime:
        return NOW


async def one_chunk(data: bytes) -> AsyncIterator[bytes]:
    yield data


@dataclass
class Refs:
    storage: Storage
    repo: ArtifactRepository
    objects: LocalObjectStore
    project_id: str
    builds: dict[str, Build]  # by label
    artifacts: dict[str, Artifact]  # the expired artifact of each build, by its label

    async def set_status(self, label: str, status: BuildStatus) -> None:
        build = self.builds[label]
        if self.storage.store is not None:
            self.storage.store.builds[build.id].status = status
            return
        assert self.storage.engine is not None
        async with write_transaction(self.storage.engine) as conn:
            await conn.execute(
                update(builds).where(builds.c.id == build.id).values(status=status.value)
            )

    async def keep_latest(self, keep: bool) -> None:
        async with self.storage.uow_factory() as uow:
            project = await uow.projects.get(self.project_id)
            project.keep_latest_artifacts = keep
            await uow.projects.save(project)
            await uow.commit()

    async def put(
        self, build: Build, expires_at: datetime | None, kind: str = "archive"
    ) -> Artifact:
        """An artifact row of the build's ``build`` job, with its object (SQL)."""
        artifact = Artifact(
            id=new_id(),
            job_id=build.jobs["build"].id,
            build_id=build.id,
            project_id=build.project_id,
            kind=kind,
            name="out",
            object_key=f"artifacts/{build.project_id}/{build.id}/{kind}-{new_id()}.tar.zst",
            size=10,
            sha256="0" * 64,
            files=1,
            entries_truncated=False,
            created_at=NOW - timedelta(days=40),
            expires_at=expires_at,
        )
        if isinstance(self.repo, InMemoryArtifactRepository):
            self.repo.rows[artifact.job_id, kind] = (artifact, [])
            return artifact
        assert self.storage.engine is not None
        await self.objects.put(artifact.object_key, one_chunk(b"x" * artifact.size))
        values = {f.name: getattr(artifact, f.name) for f in fields(artifact) if f.name != "locked"}
        async with write_transaction(self.storage.engine) as conn:
            await conn.execute(insert(artifacts).values(**values, entries=None))
        return artifact

    async def locked(self) -> dict[str, bool]:
        """``locked`` of each build's expired artifact as the repository reads it."""
        found: dict[str, bool] = {}
        for label, artifact in self.artifacts.items():
            read = await self.repo.get(artifact.job_id, artifact.kind)
            assert read is not None
            [listed] = await self.repo.list_for_job(artifact.job_id)
            assert listed == read
            found[label] = read.locked
        return found

    async def rows(self) -> set[str]:
        """The labels of the builds whose expired artifact has its row still."""
        assert self.storage.engine is not None
        async with self.storage.engine.connect() as conn:
            ids = set((await conn.scalars(select(artifacts.c.id))).all())
        return {label for label, a in self.artifacts.items() if a.id in ids}

    async def stored(self) -> set[str]:
        """The labels of the builds whose expired artifact has its object still."""
        keys = {key async for key in self.objects.keys("artifacts/")}
        return {label for label, a in self.artifacts.items() if a.object_key in keys}

    def index(self) -> SqlRetentionIndex:
        assert self.storage.engine is not None
        return SqlRetentionIndex(self.storage.engine)

    def retention(self) -> Retention:
        return Retention(self.index(), self.objects, RetentionPolicy(), Clock())


LAYOUT = {  # label: (pipeline, number, ref, status)
    "old": ("default", 1, "main", BuildStatus.SUCCESS),
    "latest": ("default", 2, "main", BuildStatus.SUCCESS),
    "failed": ("default", 3, "main", BuildStatus.FAILED),
    "running": ("default", 4, "main", BuildStatus.RUNNING),
    "release": ("default", 5, "release", BuildStatus.FAILED),
    "feature": ("default", 6, "feature", BuildStatus.SUCCESS),
    "nightly": ("nightly", 1, "main", BuildStatus.SUCCESS),
}


@pytest.fixture
async def refs(storage: Storage, tmp_path: Path) -> AsyncIterator[Refs]:
    project, default = await seed_pipeline(storage.uow_factory)
    nightly = Pipeline.create(project_id=project.id, name="nightly", config_path=None, now=T0)
    async with storage.uow_factory() as uow:
        await uow.pipelines.add(nightly)
        await uow.commit()
    pipelines = {"default": default, "nightly": nightly}
    repo: ArtifactRepository
    if storage.store is not None:
        repo = InMemoryArtifactRepository(storage.store)
    else:
        assert storage.engine is not None
        repo = SqlArtifactRepository(storage.engine)
    objects = LocalObjectStore(tmp_path / "objects")
    found = Refs(storage, repo, objects, project.id, {}, {})
    for label, (pipeline, number, ref, status) in LAYOUT.items():
        build = new_build(pipelines[pipeline], number, [job("build"), job("test")], ref=ref)
        found.builds[label] = await store_build(storage.uow_factory, build)
        await found.set_status(label, status)
        found.artifacts[label] = await found.put(build, EXPIRED)
    yield found
    await objects.aclose()


async def test_only_the_latest_success_of_each_pipeline_and_ref_is_locked(refs: Refs) -> None:
    assert await refs.locked() == {
        "old": False,  # a newer build of main succeeded
        "latest": True,  # the builds after it failed or still run
        "failed": False,
        "running": False,
        "release": False,  # the ref's latest build failed: nothing of it is kept
        "feature": True,
        "nightly": True,  # another pipeline: its own latest
    }

    await refs.set_status("running", BuildStatus.SUCCESS)
    locked = await refs.locked()
    assert (locked["latest"], locked["running"]) == (False, True)
    assert (locked["nightly"], locked["feature"]) == (True, True)

    await refs.keep_latest(False)
    assert not any((await refs.locked()).values())
    view = await refs.storage.queries.get_project(refs.project_id)
    assert view.keep_latest_artifacts is False


async def test_a_locked_artifact_is_served_past_its_expiry(refs: Refs, tmp_path: Path) -> None:
    served = Artifacts(
        repository=refs.repo,
        objects=refs.objects,
        clock=Clock(),
        scratch=tmp_path / "scratch",
        max_bytes=1 << 20,
        default_expire_in="30 days",
    )
    latest, old = refs.artifacts["latest"], refs.artifacts["old"]

    current = await served.current(latest.job_id, "archive")
    assert (current.id, current.locked, current.expires_at) == (latest.id, True, EXPIRED)
    assert [a.id for a in await list_artifacts(served, latest.job_id)] == [latest.id]
    with pytest.raises(NotFound):
        await served.current(old.job_id, "archive")
    assert await list_artifacts(served, old.job_id) == []

    await refs.set_status("running", BuildStatus.SUCCESS)
    with pytest.raises(NotFound):
        await served.current(latest.job_id, "archive")


@SQL
async def test_the_cleanup_keeps_the_latest_until_a_newer_build_succeeds(refs: Refs) -> None:
    fresh = await refs.put(refs.builds["old"], NOW + timedelta(days=1), kind="junit")
    fresh_object = {fresh.object_key}

    report = await refs.retention().run_pass()
    assert report.deleted == {"artifacts": 3}  # old, failed, release
    assert await refs.rows() == await refs.stored() == {"latest", "running", "nightly", "feature"}

    await refs.set_status("running", BuildStatus.SUCCESS)  # a newer success of main
    report = await refs.retention().run_pass()
    assert report.deleted == {"artifacts": 1}
    assert await refs.rows() == await refs.stored() == {"running", "nightly", "feature"}

    await refs.keep_latest(False)
    report = await refs.retention().run_pass()
    assert report.deleted == {"artifacts": 3}
    assert await refs.rows() == await refs.stored() == set()
    assert {key async for key in refs.objects.keys("artifacts/")} == fresh_object  # unexpired


@SQL
async def test_the_delete_checks_the_lock_again(
    refs: Refs, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A row picked while deletable stays when its build became the ref's latest success
    before the DELETE: the pick here takes every row, the DELETE must sort them out."""

    async def every_row(*args: Any) -> list[str]:
        return [a.id for a in refs.artifacts.values()]

    monkeypatch.setattr(retention_queries, "_pick", every_row)
    freed = await refs.index().delete_expired_artifacts(NOW, 500)

    assert {f.object_key for f in freed} == {
        refs.artifacts[label].object_key for label in ("old", "failed", "release")
    }
    assert await refs.rows() == {"latest", "running", "nightly", "feature"}
