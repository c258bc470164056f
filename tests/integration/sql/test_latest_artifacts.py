"""The artifacts of each ref's latest successful build outlive their expiry.

The reads (memory, SQLite, PostgreSQL: ``locked`` on the rows, hence served and listed) and
the cleanup (SQLite, PostgreSQL) decide alike: an artifact is kept once its build has
succeeded on a branch or tag, while its project keeps latest artifacts; a newer success of
that pipeline and ref (same kind, same name), or the setting turned off, releases it. A
retry of the build, running or failed, does not. Builds change status through their jobs,
as the server changes them (``Build`` commands saved by the build repository).

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
from sqlalchemy import insert, select

from ferrous.application.artifact_ports import Artifact, ArtifactRepository
from ferrous.application.artifact_reads import list_artifacts
from ferrous.application.artifacts import Artifacts
from ferrous.application.retention import Retention, RetentionPolicy
from ferrous.domain.build import Build
from ferrous.domain.errors import NotFound
from ferrous.domain.ids import new_id
from ferrous.domain.project import Pipeline
from ferrous.domain.ref_kind import RefKind
from ferrous.domain.statuses import BuildStatus, JobStatus
from ferrous.infrastructure.memory.artifacts import InMemoryArtifactRepository
from ferrous.infrastructure.sql import retention_queries, write_transaction
from ferrous.infrastructure.sql.artifact_repository import SqlArtifactRepository
from ferrous.infrastructure.sql.retention_queries import SqlRetentionIndex
from ferrous.infrastructure.sql.schema import artifacts
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
    pipelines: dict[str, Pipeline]  # by name
    builds: dict[str, Build]  # by label
    artifacts: dict[str, Artifact]  # the expired artifact of each build, by its label

    async def add(
        self,
        label: str,
        pipeline: str,
        number: int,
        ref: str,
        status: BuildStatus,
        kind: RefKind = RefKind.BRANCH,
    ) -> None:
        """A build of jobs ``build`` and ``test`` in ``status``, with an expired artifact."""
        build = new_build(self.pipelines[pipeline], number, [job("build"), job("test")], ref=ref)
        build.ref_kind = kind
        self.builds[label] = await store_build(self.storage.uow_factory, build)
        await self.set_status(label, status)
        self.artifacts[label] = await self.put(build, EXPIRED)

    async def set_status(self, label: str, status: BuildStatus) -> None:
        """Bring the build to ``status`` through its jobs: success (both pass), failed
        (``build`` fails) or running (``build`` runs)."""
        if status == BuildStatus.SUCCESS:
            await self.run(label, build=0, test=0)
        elif status == BuildStatus.FAILED:
            await self.run(label, build=1, test=0)
        elif status == BuildStatus.RUNNING:
            await self.run(label, build=None)
        else:
            assert status == BuildStatus.CREATED, status
        assert (await self.status(label)) == status

    async def run(self, label: str, **exit_codes: int | None) -> None:
        """Start the named jobs if pending and complete those given an exit code."""
        async with self.storage.uow_factory() as uow:
            build = await uow.builds.get(self.builds[label].id)
            for name, exit_code in exit_codes.items():
                started = build.job_named(name)
                if started.status == JobStatus.PENDING:
                    build.start_job(started.id, "agent-1", T0)
                if exit_code is not None:
                    build.complete_job(
                        started.id,
                        attempt=started.attempt,
                        exit_code=exit_code,
                        failure_reason=None,
                        now=T0,
                    )
            await uow.builds.save(build)
            await uow.commit()

    async def retry(self, label: str, name: str) -> None:
        """Retry the build's job ``name``, as a person does (the build runs again)."""
        async with self.storage.uow_factory() as uow:
            build = await uow.builds.get(self.builds[label].id)
            build.retry_jobs([name], T0)
            await uow.builds.save(build)
            await uow.commit()
        assert (await self.status(label)) == BuildStatus.RUNNING

    async def load(self, label: str) -> Build:
        async with self.storage.uow_factory() as uow:
            return await uow.builds.get(self.builds[label].id)

    async def status(self, label: str) -> BuildStatus:
        return (await self.load(label)).status

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
    found = Refs(storage, repo, objects, project.id, pipelines, {}, {})
    for label, (pipeline, number, ref, status) in LAYOUT.items():
        await found.add(label, pipeline, number, ref, status)
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


async def test_a_retry_keeps_the_lock_until_a_newer_build_succeeds(refs: Refs) -> None:
    """Retrying a job of main's latest success runs the build again: its artifacts stay
    locked (the retried job downloads them), and stay so when the retry fails."""
    await refs.retry("latest", "test")
    assert (await refs.locked())["latest"] is True
    await refs.run("latest", test=1)
    assert await refs.status("latest") == BuildStatus.FAILED
    assert (await refs.locked())["latest"] is True

    await refs.set_status("running", BuildStatus.SUCCESS)  # a newer success of main
    locked = await refs.locked()
    assert (locked["latest"], locked["running"]) == (False, True)
    await refs.retry("running", "build")  # the newer one's success stays: no lock comes back
    await refs.run("running", build=1)
    locked = await refs.locked()
    assert (locked["latest"], locked["running"]) == (False, True)


async def test_a_commits_build_locks_nothing(refs: Refs) -> None:
    """A build of a bare commit (its ref is the sha) is its "ref"'s only build: keeping its
    latest would keep every such build's artifacts forever."""
    sha = refs.builds["latest"].sha
    await refs.add("commit", "default", 7, sha, BuildStatus.SUCCESS, kind=RefKind.COMMIT)
    assert (await refs.locked())["commit"] is False


async def test_a_tag_and_a_branch_of_one_name_do_not_release_each_other(refs: Refs) -> None:
    await refs.add("branch", "default", 7, "v1", BuildStatus.SUCCESS)
    await refs.add("tag", "default", 8, "v1", BuildStatus.SUCCESS, kind=RefKind.TAG)
    assert [(await refs.load(label)).ref_kind for label in ("branch", "tag")] == [
        RefKind.BRANCH,
        RefKind.TAG,
    ]
    locked = await refs.locked()
    assert (locked["branch"], locked["tag"]) == (True, True)

    await refs.add("newer tag", "default", 9, "v1", BuildStatus.SUCCESS, kind=RefKind.TAG)
    locked = await refs.locked()
    assert (locked["branch"], locked["tag"], locked["newer tag"]) == (True, False, True)


@SQL
async def test_the_cleanup_keeps_a_retried_latest(refs: Refs) -> None:
    await refs.retry("latest", "test")
    report = await refs.retention().run_pass()
    assert report.deleted == {"artifacts": 3}  # old, failed, release
    assert await refs.rows() == await refs.stored() == {"latest", "running", "nightly", "feature"}

    await refs.run("latest", test=1)  # the retry failed: the build is finished, still locked
    await refs.retention().run_pass()
    assert await refs.rows() == await refs.stored() == {"latest", "running", "nightly", "feature"}

    await refs.set_status("running", BuildStatus.SUCCESS)
    report = await refs.retention().run_pass()
    assert report.deleted == {"artifacts": 1}
    assert await refs.rows() == await refs.stored() == {"running", "nightly", "feature"}


@SQL
async def test_the_cleanup_tells_refs_by_kind(refs: Refs) -> None:
    sha = refs.builds["latest"].sha
    await refs.add("commit", "default", 7, sha, BuildStatus.SUCCESS, kind=RefKind.COMMIT)
    await refs.add("branch", "default", 8, "v1", BuildStatus.SUCCESS)
    await refs.add("tag", "default", 9, "v1", BuildStatus.SUCCESS, kind=RefKind.TAG)

    report = await refs.retention().run_pass()
    assert report.deleted == {"artifacts": 4}  # old, failed, release, and the commit's
    kept = {"latest", "running", "nightly", "feature", "branch", "tag"}
    assert await refs.rows() == await refs.stored() == kept
