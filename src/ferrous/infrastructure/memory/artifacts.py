"""Artifact and cache rows in memory, for unit tests: the SQL adapters' contract.

Jobs, builds and projects are read from an ``InMemoryStore`` (what its units of work
committed), so the lease checks see the same state the bus's use cases wrote.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from ferrous.application.artifact_ports import Artifact, Cache, JobContext
from ferrous.archive import ArchiveEntry
from ferrous.domain.errors import Conflict, NotFound
from ferrous.domain.statuses import JobStatus
from ferrous.infrastructure.memory.store import InMemoryStore


def _job(store: InMemoryStore, job_id: str) -> JobContext:
    for build in store.builds.values():
        job = next((j for j in build.jobs.values() if j.id == job_id), None)
        if job is None:
            continue
        project = store.projects.get(build.project_id)
        spec: dict[str, Any] = job.spec or {}
        configured = spec.get("artifacts")
        expire_in = configured.get("expire_in") if isinstance(configured, dict) else None
        return JobContext(
            job_id=job.id,
            build_id=build.id,
            project_id=build.project_id,
            agent_id=job.agent_id,
            status=job.status.value,
            protected_ref=build.protected_ref,
            expire_in=str(expire_in) if expire_in is not None else None,
            project_expire_in=project.artifacts_expire_in if project is not None else None,
        )
    raise NotFound(f"no job {job_id}")


def _locked(store: InMemoryStore, artifact: Artifact) -> Artifact:
    """``artifact`` with ``locked`` as ``sql.latest_artifacts`` decides it."""
    build = store.builds.get(artifact.build_id)
    project = store.projects.get(build.project_id) if build is not None else None
    if build is None or project is None:
        return artifact
    if not build.has_succeeded or not build.ref_kind.has_latest:
        return artifact
    newer = any(
        other.pipeline_id == build.pipeline_id
        and other.ref_kind == build.ref_kind
        and other.ref == build.ref
        and other.has_succeeded
        and other.number > build.number
        for other in store.builds.values()
    )
    return replace(artifact, locked=project.keep_latest_artifacts and not newer)


def _check_lease(store: InMemoryStore, job_id: str, agent_id: str) -> None:
    job = _job(store, job_id)
    if job.agent_id != agent_id or job.status != JobStatus.RUNNING:
        raise Conflict(f"this agent does not hold the lease of job {job_id}")


class InMemoryArtifactRepository:
    def __init__(self, store: InMemoryStore) -> None:
        self.store = store
        self.rows: dict[tuple[str, str], tuple[Artifact, list[ArchiveEntry]]] = {}

    async def job(self, job_id: str) -> JobContext:
        return _job(self.store, job_id)

    async def replace(
        self, artifact: Artifact, entries: Sequence[ArchiveEntry], *, agent_id: str
    ) -> Artifact | None:
        _check_lease(self.store, artifact.job_id, agent_id)
        old = self.rows.get((artifact.job_id, artifact.kind))
        self.rows[artifact.job_id, artifact.kind] = (artifact, list(entries))
        return None if old is None else old[0]

    async def get(self, job_id: str, kind: str) -> Artifact | None:
        found = self.rows.get((job_id, kind))
        return None if found is None else _locked(self.store, found[0])

    async def list_for_job(self, job_id: str) -> list[Artifact]:
        found = [_locked(self.store, a) for a, _ in self.rows.values() if a.job_id == job_id]
        return sorted(found, key=lambda a: (a.created_at, a.id))

    async def entries(self, artifact_id: str) -> list[ArchiveEntry]:
        for artifact, entries in self.rows.values():
            if artifact.id == artifact_id:
                return list(entries)
        return []


class InMemoryCacheRepository:
    def __init__(self, store: InMemoryStore) -> None:
        self.store = store
        self.rows: dict[tuple[str, str, str], Cache] = {}

    async def job(self, job_id: str) -> JobContext:
        return _job(self.store, job_id)

    async def get(self, project_id: str, scope: str, key: str) -> Cache | None:
        return self.rows.get((project_id, scope, key))

    async def touch(self, cache_id: str, now: datetime) -> None:
        for where, cache in self.rows.items():
            if cache.id == cache_id and cache.last_used_at < now:
                self.rows[where] = replace(cache, last_used_at=now)

    async def replace(self, cache: Cache, *, job_id: str, agent_id: str) -> Cache | None:
        _check_lease(self.store, job_id, agent_id)
        where = (cache.project_id, cache.scope, cache.key)
        old = self.rows.get(where)
        self.rows[where] = cache
        return old
