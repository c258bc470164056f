"""The Build aggregate as rows, and the snapshots that let ``save`` write only what changed."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row

from ferrous.domain.auto_cancel import AutoCancel
from ferrous.domain.build import Attempt, Build, Job, JobDefinition
from ferrous.domain.phases import Phase
from ferrous.domain.ref_kind import RefKind
from ferrous.domain.statuses import BuildStatus, JobStatus, When

JobState = tuple[
    str,  # status
    int,  # attempt
    bool,  # failure_allowed
    str | None,  # agent_id
    int | None,  # exit_code
    str | None,  # failure_reason
    datetime | None,  # queued_at
    datetime | None,  # scheduled_for
    datetime | None,  # started_at
    datetime | None,  # finished_at
    float | None,  # coverage
]

BuildState = tuple[
    str,  # status
    str | None,  # failure_reason
    datetime | None,  # started_at
    datetime | None,  # finished_at
]


def definition_to_json(definition: JobDefinition) -> dict[str, Any]:
    return {
        "name": definition.name,
        "stage": definition.stage,
        "stage_index": definition.stage_index,
        "when": definition.when.value,
        "needs": None if definition.needs is None else list(definition.needs),
        "allow_failure": definition.allow_failure,
        "allow_failure_exit_codes": list(definition.allow_failure_exit_codes),
        "retry_max": definition.retry_max,
        "retry_when": list(definition.retry_when),
        "retry_exit_codes": list(definition.retry_exit_codes),
        "tags": list(definition.tags),
        "timeout": definition.timeout,
        "start_in": definition.start_in,
        "interruptible": definition.interruptible,
    }


def definition_from_json(data: dict[str, Any]) -> JobDefinition:
    needs = data.get("needs")
    return JobDefinition(
        name=data["name"],
        stage=data["stage"],
        stage_index=data["stage_index"],
        when=When(data["when"]),
        needs=None if needs is None else tuple(needs),
        allow_failure=data["allow_failure"],
        allow_failure_exit_codes=tuple(data.get("allow_failure_exit_codes", ())),
        retry_max=data.get("retry_max", 0),
        retry_when=tuple(data.get("retry_when", ("always",))),
        retry_exit_codes=tuple(data.get("retry_exit_codes", ())),
        tags=tuple(data.get("tags", ())),
        timeout=data.get("timeout"),
        start_in=data.get("start_in"),
        interruptible=data.get("interruptible", False),
    )


def job_state(job: Job) -> JobState:
    return (
        job.status.value,
        job.attempt,
        job.failure_allowed,
        job.agent_id,
        job.exit_code,
        job.failure_reason,
        job.queued_at,
        job.scheduled_for,
        job.started_at,
        job.finished_at,
        job.coverage,
    )


def build_state(build: Build) -> BuildState:
    return (build.status.value, build.failure_reason, build.started_at, build.finished_at)


def job_state_params(job: Job) -> dict[str, Any]:
    """Parameters of the ``UPDATE jobs`` of a changed job (``b_`` names: SQLAlchemy rule)."""
    return {
        "b_id": job.id,
        "b_status": job.status.value,
        "b_attempt": job.attempt,
        "b_failure_allowed": job.failure_allowed,
        "b_agent_id": job.agent_id,
        "b_exit_code": job.exit_code,
        "b_failure_reason": job.failure_reason,
        "b_queued_at": job.queued_at,
        "b_scheduled_for": job.scheduled_for,
        "b_started_at": job.started_at,
        "b_finished_at": job.finished_at,
        "b_coverage": job.coverage,
    }


def build_row(build: Build) -> dict[str, Any]:
    return {
        "id": build.id,
        "project_id": build.project_id,
        "pipeline_id": build.pipeline_id,
        "number": build.number,
        "ref": build.ref,
        "sha": build.sha,
        "source": build.source,
        "status": build.status.value,
        "failure_reason": build.failure_reason,
        "variables": build.variables,
        "problems": build.problems,
        "version": build.version,
        "created_at": build.created_at,
        "started_at": build.started_at,
        "finished_at": build.finished_at,
        "schedule_id": build.schedule_id,
        "auto_cancel": build.auto_cancel.value,
        "protected_ref": build.protected_ref,
        "ref_kind": build.ref_kind.value,
        "has_succeeded": build.has_succeeded,
    }


def job_row(job: Job, position: int) -> dict[str, Any]:
    definition = job.definition
    return {
        "id": job.id,
        "build_id": job.build_id,
        "position": position,
        "name": definition.name,
        "stage": definition.stage,
        "stage_index": definition.stage_index,
        "status": job.status.value,
        "attempt": job.attempt,
        "failure_allowed": job.failure_allowed,
        "agent_id": job.agent_id,
        "exit_code": job.exit_code,
        "failure_reason": job.failure_reason,
        "definition": definition_to_json(definition),
        "spec": job.spec,
        "tags": sorted(set(definition.tags)),
        "queued_at": job.queued_at,
        "scheduled_for": job.scheduled_for,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "coverage": job.coverage,
    }


def tag_rows(job: Job) -> list[dict[str, Any]]:
    return [{"job_id": job.id, "tag": tag} for tag in sorted(set(job.definition.tags))]


def attempt_row(job: Job, attempt: Attempt) -> dict[str, Any]:
    return {
        "job_id": job.id,
        "number": attempt.number,
        "build_id": job.build_id,
        "status": attempt.status.value,
        "agent_id": attempt.agent_id,
        "exit_code": attempt.exit_code,
        "failure_reason": attempt.failure_reason,
        "started_at": attempt.started_at,
        "finished_at": attempt.finished_at,
        "phases": [phase.as_json() for phase in attempt.phases] if attempt.phases else None,
    }


def build_from_rows(
    row: Row[Any], job_rows: Iterable[Row[Any]], attempt_rows: Iterable[Row[Any]]
) -> Build:
    history: dict[str, list[Attempt]] = {}
    for a in attempt_rows:
        history.setdefault(a.job_id, []).append(
            Attempt(
                number=a.number,
                status=JobStatus(a.status),
                agent_id=a.agent_id,
                exit_code=a.exit_code,
                failure_reason=a.failure_reason,
                started_at=a.started_at,
                finished_at=a.finished_at,
                phases=tuple(Phase.from_json(p) for p in a.phases or ()),
            )
        )
    build_jobs: dict[str, Job] = {}
    for j in job_rows:
        build_jobs[j.name] = Job(
            id=j.id,
            build_id=j.build_id,
            definition=definition_from_json(j.definition),
            status=JobStatus(j.status),
            attempt=j.attempt,
            failure_allowed=j.failure_allowed,
            agent_id=j.agent_id,
            exit_code=j.exit_code,
            failure_reason=j.failure_reason,
            queued_at=j.queued_at,
            scheduled_for=j.scheduled_for,
            started_at=j.started_at,
            finished_at=j.finished_at,
            coverage=j.coverage,
            history=history.get(j.id, []),
        )
    return Build(
        id=row.id,
        project_id=row.project_id,
        pipeline_id=row.pipeline_id,
        number=row.number,
        ref=row.ref,
        sha=row.sha,
        source=row.source,
        status=BuildStatus(row.status),
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        variables=row.variables,
        problems=row.problems,
        failure_reason=row.failure_reason,
        jobs=build_jobs,
        schedule_id=row.schedule_id,
        auto_cancel=AutoCancel(row.auto_cancel),
        protected_ref=row.protected_ref,
        ref_kind=RefKind(row.ref_kind),
        has_succeeded=row.has_succeeded,
        version=row.version,
    )


@dataclass(slots=True, kw_only=True)
class BuildSnapshot:
    """What the database holds for a build at ``version``, to diff the aggregate against."""

    state: BuildState
    variables: dict[str, str]
    problems: list[dict[str, Any]]
    jobs: dict[str, JobState]  # by job id
    attempts: dict[str, int]  # job id -> attempts stored

    @classmethod
    def of(cls, build: Build) -> BuildSnapshot:
        return cls(
            state=build_state(build),
            variables=dict(build.variables),
            problems=[dict(problem) for problem in build.problems],
            jobs={job.id: job_state(job) for job in build.jobs.values()},
            attempts={job.id: len(job.history) for job in build.jobs.values()},
        )

    @classmethod
    def stored(
        cls, build: Build, job_rows: Sequence[Row[Any]], attempt_counts: dict[str, int]
    ) -> BuildSnapshot:
        """The stored jobs of ``build`` (read back from the database) and its JSON as is."""
        snapshot = cls.of(build)
        snapshot.jobs = {
            j.id: (
                j.status,
                j.attempt,
                j.failure_allowed,
                j.agent_id,
                j.exit_code,
                j.failure_reason,
                j.queued_at,
                j.scheduled_for,
                j.started_at,
                j.finished_at,
                j.coverage,
            )
            for j in job_rows
        }
        snapshot.attempts = attempt_counts
        return snapshot
