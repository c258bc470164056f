"""Artifact rows on SQL, each call its own short transaction (``write_transaction``).

``replace`` reads the job's lease with ``FOR UPDATE`` (PostgreSQL; SQLite's write gate
serializes anyway), so no claim, completion or reaper changes the lease between the check
and the new row, and two uploads of one job's kind queue instead of meeting on the unique
``(job_id, kind)``. The listing is stored as ``[[path, size, kind, link], ...]``. Reads
answer ``locked`` with each row, evaluated in the same query (``latest_artifacts``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import Row, Select, delete, insert, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ferrous.application.artifact_ports import Artifact, JobContext
from ferrous.archive import ArchiveEntry
from ferrous.domain.errors import Conflict, NotFound
from ferrous.domain.statuses import JobStatus
from ferrous.infrastructure.sql.latest_artifacts import kept_as_latest
from ferrous.infrastructure.sql.schema import artifacts, builds, jobs, projects
from ferrous.infrastructure.sql.session import raise_storage_error, write_transaction

_a = artifacts.c
_COLUMNS = [c for c in artifacts.c if c.name != "entries"]
_READ: Select[Any] = select(*_COLUMNS, kept_as_latest(_a.build_id).label("locked"))
_JOB: Select[Any] = (
    select(
        jobs.c.id,
        jobs.c.build_id,
        builds.c.project_id,
        jobs.c.agent_id,
        jobs.c.status,
        jobs.c.spec,
        builds.c.protected_ref,
        projects.c.artifacts_expire_in,
    )
    .join(builds, builds.c.id == jobs.c.build_id)
    .join(projects, projects.c.id == builds.c.project_id)
)
_LEASE = select(jobs.c.agent_id, jobs.c.status).with_for_update()


def job_context(row: Row[Any]) -> JobContext:
    spec = row.spec if isinstance(row.spec, dict) else {}
    configured = spec.get("artifacts")
    expire_in = configured.get("expire_in") if isinstance(configured, dict) else None
    return JobContext(
        job_id=row.id,
        build_id=row.build_id,
        project_id=row.project_id,
        agent_id=row.agent_id,
        status=row.status,
        protected_ref=bool(row.protected_ref),
        expire_in=str(expire_in) if expire_in is not None else None,
        project_expire_in=row.artifacts_expire_in,
    )


async def load_job(engine: AsyncEngine, job_id: str) -> JobContext:
    async with reading(engine) as conn:
        row = (await conn.execute(_JOB.where(jobs.c.id == job_id))).first()
    if row is None:
        raise NotFound(f"no job {job_id}")
    return job_context(row)


async def check_lease(conn: AsyncConnection, job_id: str, agent_id: str) -> None:
    """Inside a write transaction: ``Conflict`` unless ``agent_id`` runs the job now."""
    row = (await conn.execute(_LEASE.where(jobs.c.id == job_id))).first()
    if row is None:
        raise NotFound(f"no job {job_id}")
    if row.agent_id != agent_id or row.status != JobStatus.RUNNING:
        raise Conflict(f"this agent does not hold the lease of job {job_id}")


@asynccontextmanager
async def reading(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    try:
        async with engine.connect() as conn:
            yield conn
    except SQLAlchemyError as exc:
        raise_storage_error(exc)


@asynccontextmanager
async def writing(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    try:
        async with write_transaction(engine) as conn:
            yield conn
    except SQLAlchemyError as exc:
        raise_storage_error(exc)


def _artifact(row: Row[Any]) -> Artifact:
    values = row._mapping
    locked = bool(values.get("locked", False))  # read by ``_READ`` only
    return Artifact(**{c.name: values[c.name] for c in _COLUMNS}, locked=locked)


class SqlArtifactRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def job(self, job_id: str) -> JobContext:
        return await load_job(self._engine, job_id)

    async def replace(
        self, artifact: Artifact, entries: Sequence[ArchiveEntry], *, agent_id: str
    ) -> Artifact | None:
        where = (_a.job_id == artifact.job_id, _a.kind == artifact.kind)
        async with writing(self._engine) as conn:
            await check_lease(conn, artifact.job_id, agent_id)
            old = (await conn.execute(select(*_COLUMNS).where(*where))).first()
            if old is not None:
                await conn.execute(delete(artifacts).where(_a.id == old.id))
            await conn.execute(
                insert(artifacts).values(
                    **{c.name: getattr(artifact, c.name) for c in _COLUMNS},
                    entries=[[e.path, e.size, e.kind, e.link] for e in entries],
                )
            )
        return None if old is None else _artifact(old)

    async def get(self, job_id: str, kind: str) -> Artifact | None:
        statement = _READ.where(_a.job_id == job_id, _a.kind == kind)
        async with reading(self._engine) as conn:
            row = (await conn.execute(statement)).first()
        return None if row is None else _artifact(row)

    async def list_for_job(self, job_id: str) -> list[Artifact]:
        statement = _READ.where(_a.job_id == job_id).order_by(_a.created_at, _a.id)
        async with reading(self._engine) as conn:
            rows = (await conn.execute(statement)).all()
        return [_artifact(row) for row in rows]

    async def entries(self, artifact_id: str) -> list[ArchiveEntry]:
        async with reading(self._engine) as conn:
            stored = (
                await conn.execute(select(_a.entries).where(_a.id == artifact_id))
            ).scalar_one_or_none()
        return [ArchiveEntry(path, size, kind, link) for path, size, kind, link in stored or []]
