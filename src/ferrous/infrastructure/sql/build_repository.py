"""Builds with their jobs and attempts: two or three queries to load, a diff to save.

``get`` reads the build row and its jobs (and the attempts, only if a job ever started) and
keeps a snapshot of what it read; ``save`` bumps the version with a compare-and-set
``UPDATE`` (``StaleState`` when someone else saved first), then updates only the jobs whose
state differs from the snapshot and inserts only the new attempts, each in one executemany.
A job's definition, spec and tags are written once, with the job: the aggregate never changes
them. An aggregate loaded by another unit of work (no snapshot here) is diffed against the
stored rows instead, read after the version check proved they are what it was loaded from.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, exists, func, insert, literal, select, update

from ferrous.application.ports import JobLease, JobRef, StaleState
from ferrous.domain.build import Build, Job
from ferrous.domain.errors import NotFound
from ferrous.domain.statuses import BuildStatus, JobStatus
from ferrous.infrastructure.sql.build_rows import (
    BuildSnapshot,
    JobState,
    attempt_row,
    build_from_rows,
    build_row,
    build_state,
    job_row,
    job_state,
    job_state_params,
    tag_rows,
)
from ferrous.infrastructure.sql.schema import builds, job_attempts, job_tags, jobs
from ferrous.infrastructure.sql.session import SqlSession

Track = Callable[[Any], None]

_JOB_STATE_COLUMNS = (
    jobs.c.id,
    jobs.c.status,
    jobs.c.attempt,
    jobs.c.failure_allowed,
    jobs.c.agent_id,
    jobs.c.exit_code,
    jobs.c.failure_reason,
    jobs.c.queued_at,
    jobs.c.scheduled_for,
    jobs.c.started_at,
    jobs.c.finished_at,
    jobs.c.coverage,
)
_SELECT_BUILD = select(builds).where(builds.c.id == bindparam("build_id"))
_SELECT_BUILD_LOCKED = _SELECT_BUILD.with_for_update()
#: every column but ``spec``: decoding a few hundred jobs' specs on each claim and completion
#: was half of the server's time with many agents on one build
_SELECT_JOBS = (
    select(*(column for column in jobs.c if column.name != "spec"))
    .where(jobs.c.build_id == bindparam("build_id"))
    .order_by(jobs.c.position)
)
_SELECT_SPEC = select(jobs.c.spec).where(jobs.c.id == bindparam("job_id"))
_SELECT_ATTEMPTS = (
    select(job_attempts)
    .where(job_attempts.c.build_id == bindparam("build_id"))
    .order_by(job_attempts.c.job_id, job_attempts.c.number)
)
_SELECT_JOB_STATES = select(*_JOB_STATE_COLUMNS).where(jobs.c.build_id == bindparam("build_id"))
_COUNT_ATTEMPTS = (
    select(job_attempts.c.job_id, func.count().label("stored"))
    .where(job_attempts.c.build_id == bindparam("build_id"))
    .group_by(job_attempts.c.job_id)
)
_UPDATE_BUILD = (
    update(builds)
    .where(builds.c.id == bindparam("b_id"), builds.c.version == bindparam("b_version"))
    .values(
        status=bindparam("b_status"),
        failure_reason=bindparam("b_failure_reason"),
        started_at=bindparam("b_started_at"),
        finished_at=bindparam("b_finished_at"),
        has_succeeded=bindparam("b_has_succeeded"),
        version=builds.c.version + 1,
    )
)
_UPDATE_BUILD_WITH_DOCUMENTS = _UPDATE_BUILD.values(
    variables=bindparam("b_variables"), problems=bindparam("b_problems")
)
_UPDATE_JOB = (
    update(jobs)
    .where(jobs.c.id == bindparam("b_id"))
    .values(
        status=bindparam("b_status"),
        attempt=bindparam("b_attempt"),
        failure_allowed=bindparam("b_failure_allowed"),
        agent_id=bindparam("b_agent_id"),
        exit_code=bindparam("b_exit_code"),
        failure_reason=bindparam("b_failure_reason"),
        queued_at=bindparam("b_queued_at"),
        scheduled_for=bindparam("b_scheduled_for"),
        started_at=bindparam("b_started_at"),
        finished_at=bindparam("b_finished_at"),
        coverage=bindparam("b_coverage"),
    )
)
#: a job's row written only if it is still what was read: claims start jobs without the
#: build's version, so a writer that read a job pending must not overwrite its start
_UPDATE_JOB_IF_UNCHANGED = _UPDATE_JOB.where(
    jobs.c.status == bindparam("b_old_status"), jobs.c.attempt == bindparam("b_old_attempt")
)
_INSERT_BUILD = insert(builds)
_INSERT_JOBS = insert(jobs)
_INSERT_TAGS = insert(job_tags)
_INSERT_ATTEMPTS = insert(job_attempts)
_BUILD_OF_JOB = select(jobs.c.build_id).where(jobs.c.id == bindparam("job_id"))
_LEASE_COLUMNS = select(jobs.c.id, jobs.c.build_id, jobs.c.agent_id, jobs.c.status, jobs.c.attempt)
_JOB_LEASE = _LEASE_COLUMNS.where(jobs.c.id == bindparam("job_id"))
_JOB_LEASES = _LEASE_COLUMNS.where(jobs.c.id.in_(bindparam("job_ids", expanding=True)))
_RUNNING_ON = (
    select(jobs.c.build_id, jobs.c.id)
    .where(jobs.c.agent_id == bindparam("agent_id"), jobs.c.status == JobStatus.RUNNING.value)
    .order_by(jobs.c.started_at, jobs.c.id)
)
_DUE = (
    select(jobs.c.build_id)
    .where(
        jobs.c.status == JobStatus.SCHEDULED.value,
        jobs.c.scheduled_for <= bindparam("now"),
    )
    .group_by(jobs.c.build_id)
    .order_by(func.min(jobs.c.scheduled_for), jobs.c.build_id)
)
_TAG_NOT_AMONG_LABELS = exists(
    select(literal(1)).where(
        job_tags.c.job_id == jobs.c.id,
        job_tags.c.tag.not_in(bindparam("labels", expanding=True)),
    )
)
_CLAIMABLE = (
    select(jobs.c.build_id, jobs.c.id)
    .where(jobs.c.status == JobStatus.PENDING.value, ~_TAG_NOT_AMONG_LABELS)
    .order_by(jobs.c.queued_at, jobs.c.build_id, jobs.c.position)
    .limit(bindparam("limit"))
)
_CLAIMABLE_LOCKED = _CLAIMABLE.with_for_update(skip_locked=True, of=jobs)
#: auto-cancel candidates: finished builds and those waiting on a manual job are left alone
_CANCELABLE_STATUSES = [
    s.value for s in BuildStatus if not s.is_finished and s != BuildStatus.MANUAL
]
_UNFINISHED_BEFORE = (
    select(builds.c.id)
    .where(
        builds.c.pipeline_id == bindparam("pipeline_id"),
        builds.c.ref == bindparam("ref"),
        builds.c.number < bindparam("number"),
        builds.c.created_at > bindparam("created_after"),
        builds.c.status.in_(_CANCELABLE_STATUSES),
        builds.c.sha.not_in(bindparam("excluding_shas", expanding=True)),
    )
    .order_by(builds.c.number)
    .limit(bindparam("limit"))
)


def _lease(row: Any) -> JobLease:
    return JobLease(
        build_id=row.build_id, agent_id=row.agent_id, status=row.status, attempt=row.attempt
    )


class SqlBuildRepository:
    def __init__(self, session: SqlSession, track: Track) -> None:
        self._session = session
        self._track = track
        self._snapshots: dict[str, BuildSnapshot] = {}
        #: each build's status when this transaction first read it (None: added in it)
        self._status_at_start: dict[str, BuildStatus | None] = {}

    async def add(self, build: Build) -> None:
        session = self._session
        await session.execute_write(_INSERT_BUILD, build_row(build))
        job_list = list(build.jobs.values())
        if job_list:
            await session.execute_write(
                _INSERT_JOBS, [job_row(job, i) for i, job in enumerate(job_list)]
            )
            tags = [row for job in job_list for row in tag_rows(job)]
            if tags:
                await session.execute_write(_INSERT_TAGS, tags)
            attempts = [attempt_row(job, a) for job in job_list for a in job.history]
            if attempts:
                await session.execute_write(_INSERT_ATTEMPTS, attempts)
        self._snapshots[build.id] = BuildSnapshot.of(build)
        self._status_at_start.setdefault(build.id, None)
        self._track(build)

    async def get(self, build_id: str, *, lock: bool = False) -> Build:
        """``lock`` on SQLite takes the write gate before reading: the save that follows
        cannot find the build changed."""
        session = self._session
        params = {"build_id": build_id}
        statement = _SELECT_BUILD_LOCKED if lock and session.is_postgres else _SELECT_BUILD
        row = (await session.execute(statement, params, write=lock)).first()
        if row is None:
            raise NotFound(f"no build {build_id}")
        job_rows = (await session.execute(_SELECT_JOBS, params)).all()
        attempt_rows: list[Any] = []
        if any(j.attempt > 0 for j in job_rows):  # no job ever started: no history
            attempt_rows = list((await session.execute(_SELECT_ATTEMPTS, params)).all())
        build = build_from_rows(row, job_rows, attempt_rows)
        self._snapshots[build.id] = BuildSnapshot.of(build)
        self._status_at_start.setdefault(build.id, build.status)
        return build

    def status_changed(self, build: Build) -> bool:
        """Whether the build's status differs from the one this transaction read first
        (true for a build added here, or saved without being read here)."""
        return self._status_at_start.get(build.id) != build.status

    def transaction_ended(self) -> None:
        """Called by the unit of work's commit: the next reads start a new transaction."""
        self._status_at_start.clear()

    async def save(self, build: Build) -> None:
        session = self._session
        snapshot = self._snapshots.get(build.id)
        params: dict[str, Any] = {
            "b_id": build.id,
            "b_version": build.version,
            "b_status": build.status.value,
            "b_failure_reason": build.failure_reason,
            "b_started_at": build.started_at,
            "b_finished_at": build.finished_at,
            "b_has_succeeded": build.has_succeeded,
        }
        statement = _UPDATE_BUILD
        if (
            snapshot is None
            or snapshot.variables != build.variables
            or snapshot.problems != build.problems
        ):
            statement = _UPDATE_BUILD_WITH_DOCUMENTS
            params["b_variables"] = build.variables
            params["b_problems"] = build.problems
        matched = await session.execute_write(statement, params)
        if matched != 1:
            await self._raise_stale(build)
        if snapshot is None:
            # loaded by another unit of work: the version matched, so the stored rows are
            # the state it was loaded from, but for jobs claims started since
            snapshot = await self._stored_snapshot(build)
            self._check_no_start_missed(build, snapshot)
        job_list = list(build.jobs.values())
        new_jobs = [(i, job) for i, job in enumerate(job_list) if job.id not in snapshot.jobs]
        changed = [
            job
            for job in job_list
            if job.id in snapshot.jobs and snapshot.jobs[job.id] != job_state(job)
        ]
        if new_jobs:
            await session.execute_write(_INSERT_JOBS, [job_row(job, i) for i, job in new_jobs])
            tags = [row for _, job in new_jobs for row in tag_rows(job)]
            if tags:
                await session.execute_write(_INSERT_TAGS, tags)
        # a job read pending may have been claimed since: written one by one, if unchanged
        unclaimed = [j for j in changed if snapshot.jobs[j.id][0] == JobStatus.PENDING.value]
        for job in unclaimed:
            await self._write_job_if_unchanged(job, snapshot.jobs[job.id])
        rest = [job_state_params(j) for j in changed if j not in unclaimed]
        if rest:
            await session.execute_write(_UPDATE_JOB, rest)
        await self._insert_attempts(job_list, snapshot)
        build.version += 1
        self._snapshots[build.id] = BuildSnapshot.of(build)
        self._track(build)

    async def save_started(self, build: Build, job_id: str) -> None:
        snapshot = self._snapshots.get(build.id)
        started = build.job(job_id)
        others_changed = snapshot is None or any(
            snapshot.jobs.get(job.id) != job_state(job)
            for job in build.jobs.values()
            if job.id != job_id
        )
        if snapshot is None or others_changed or snapshot.variables != build.variables:
            await self.save(build)  # not a plain start: the whole diff, under the version
            return
        await self._write_job_if_unchanged(started, snapshot.jobs[job_id])
        if build_state(build) != snapshot.state:  # the build's first job: it starts too
            params = {
                "b_id": build.id,
                "b_version": build.version,
                "b_status": build.status.value,
                "b_failure_reason": build.failure_reason,
                "b_started_at": build.started_at,
                "b_finished_at": build.finished_at,
                "b_has_succeeded": build.has_succeeded,
            }
            if await self._session.execute_write(_UPDATE_BUILD, params) != 1:
                await self._raise_stale(build)
            build.version += 1
        await self._insert_attempts([started], snapshot)
        self._snapshots[build.id] = BuildSnapshot.of(build)
        self._track(build)

    async def _write_job_if_unchanged(self, job: Job, read: JobState) -> None:
        params = {**job_state_params(job), "b_old_status": read[0], "b_old_attempt": read[1]}
        if await self._session.execute_write(_UPDATE_JOB_IF_UNCHANGED, params) != 1:
            raise StaleState(f"job {job.id} changed since it was read (claimed meanwhile)")

    async def _insert_attempts(self, job_list: list[Job], snapshot: BuildSnapshot) -> None:
        attempts = [
            attempt_row(job, attempt)
            for job in job_list
            for attempt in job.history[snapshot.attempts.get(job.id, 0) :]
        ]
        if attempts:
            await self._session.execute_write(_INSERT_ATTEMPTS, attempts)

    @staticmethod
    def _check_no_start_missed(build: Build, stored: BuildSnapshot) -> None:
        """An aggregate read elsewhere matched the version, but a claim may have started one
        of its pending jobs since (claims leave the version alone): then it is stale."""
        for job in build.jobs.values():
            row = stored.jobs.get(job.id)
            if row is not None and row[1] > job.attempt:
                raise StaleState(f"job {job.id} was started after build {build.id} was read")

    async def _raise_stale(self, build: Build) -> None:
        result = await self._session.execute(
            select(builds.c.version).where(builds.c.id == build.id)
        )
        stored = result.scalar_one_or_none()
        if stored is None:
            raise NotFound(f"no build {build.id}")
        raise StaleState(
            f"build {build.id} is at version {stored}, this change was made at {build.version}"
        )

    async def _stored_snapshot(self, build: Build) -> BuildSnapshot:
        params = {"build_id": build.id}
        job_rows = (await self._session.execute(_SELECT_JOB_STATES, params)).all()
        counts = (await self._session.execute(_COUNT_ATTEMPTS, params)).all()
        return BuildSnapshot.stored(
            build, job_rows, {row.job_id: int(row.stored) for row in counts}
        )

    async def build_of_job(self, job_id: str) -> str:
        result = await self._session.execute(_BUILD_OF_JOB, {"job_id": job_id})
        build_id = result.scalar_one_or_none()
        if build_id is None:
            raise NotFound(f"no job {job_id}")
        return str(build_id)

    async def job_lease(self, job_id: str) -> JobLease:
        row = (await self._session.execute(_JOB_LEASE, {"job_id": job_id})).first()
        if row is None:
            raise NotFound(f"no job {job_id}")
        return _lease(row)

    async def job_leases(self, job_ids: Sequence[str]) -> dict[str, JobLease]:
        if not job_ids:
            return {}
        result = await self._session.execute(_JOB_LEASES, {"job_ids": list(job_ids)})
        return {row.id: _lease(row) for row in result}

    async def job_spec(self, job_id: str) -> dict[str, Any]:
        spec = (await self._session.execute(_SELECT_SPEC, {"job_id": job_id})).scalar_one_or_none()
        if spec is None:
            raise NotFound(f"no job {job_id}")
        return dict(spec)

    async def claimable(self, labels: frozenset[str], limit: int) -> list[JobRef]:
        """On SQLite this takes the write gate: claims are serialized, none is wasted."""
        statement = _CLAIMABLE_LOCKED if self._session.is_postgres else _CLAIMABLE
        result = await self._session.execute(
            statement, {"labels": sorted(labels), "limit": limit}, write=True
        )
        return [JobRef(build_id=row.build_id, job_id=row.id) for row in result]

    async def running_on(self, agent_id: str) -> list[JobRef]:
        result = await self._session.execute(_RUNNING_ON, {"agent_id": agent_id})
        return [JobRef(build_id=row.build_id, job_id=row.id) for row in result]

    async def with_due_jobs(self, now: datetime) -> list[str]:
        result = await self._session.execute(_DUE, {"now": now})
        return [str(build_id) for build_id in result.scalars()]

    async def unfinished_before(
        self,
        pipeline_id: str,
        ref: str,
        number: int,
        created_after: datetime,
        limit: int,
        excluding_shas: Sequence[str] = (),
    ) -> list[str]:
        params = {
            "pipeline_id": pipeline_id,
            "ref": ref,
            "number": number,
            "created_after": created_after,
            "limit": limit,
            "excluding_shas": list(excluding_shas) or [""],  # NOT IN () is not portable
        }
        result = await self._session.execute(_UNFINISHED_BEFORE, params)
        return [str(build_id) for build_id in result.scalars()]
