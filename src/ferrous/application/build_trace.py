"""A finished build as a trace: build -> stages -> job attempts -> their phases.

The spans follow OpenTelemetry's CI/CD conventions where they have a name for the thing
(``cicd.pipeline.*``, ``vcs.ref.head.*``) and say ``ferrous.*`` where they do not. Every
time comes from the database, so the trace is the same whichever server draws it: a stage
runs from its first job's start to its last job's end, a job span is one attempt (a retried
job has one per attempt, the failed ones marked as errors), and a job that never ran (skipped,
canceled while waiting, a manual job nobody played) is an instant at the build's end, so
that the stage shows all of its jobs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import datetime

import structlog

from ferrous.application.ports import UnitOfWork
from ferrous.application.queries import BuildView, JobView, Queries
from ferrous.application.tracing import AttributeValue, BuildTracer, TraceSpan
from ferrous.domain.build import TIMEOUT_FAILURE, Attempt
from ferrous.domain.events import BuildCompleted, Event

log = structlog.get_logger(__name__)

#: ``cicd.pipeline.result`` / ``cicd.pipeline.task.run.result`` by our status
RESULTS = {
    "success": "success",
    "failed": "failure",
    "canceled": "cancellation",
    "skipped": "skip",
    "manual": "skip",
}
#: failure reasons that are not the script's fault (the semantic conventions' ``error``)
SYSTEM_REASONS = frozenset({"runner_system_failure", "unknown_failure"})


def build_spans(view: BuildView, attempts: Mapping[str, Sequence[Attempt]]) -> TraceSpan:
    """The trace of a finished build; ``attempts`` are each job's (by job id), in order."""
    summary = view.summary
    common: dict[str, AttributeValue] = {
        "cicd.pipeline.name": summary.pipeline_name,
        "cicd.pipeline.run.id": summary.id,
        "ferrous.project": summary.project_name,
    }
    end = summary.finished_at or summary.started_at or summary.created_at
    stages = []
    for stage in view.stages:
        jobs = [job for job in view.jobs if job.stage == stage]
        runs = [
            span for job in jobs for span in _job_spans(job, attempts.get(job.id, ()), end, common)
        ]
        if runs:
            stages.append(_stage_span(stage, jobs, runs, common))
    result = RESULTS.get(summary.status, summary.status)
    attributes: dict[str, AttributeValue] = {
        **common,
        "cicd.pipeline.action.name": "RUN",
        "cicd.pipeline.result": result,
        "vcs.ref.head.name": summary.ref,
        "vcs.ref.head.revision": summary.sha,
        "ferrous.build.number": summary.number,
        "ferrous.build.source": summary.source,
    }
    error = None
    if summary.status == "failed":
        error = view.failure_reason or "failed"
        attributes["error.type"] = error
    started, finished = _bounds(summary.created_at, end, stages)
    return TraceSpan(
        name=f"RUN {summary.pipeline_name}",
        kind="server",
        started_at=started,
        finished_at=finished,
        attributes=attributes,
        error=error,
        children=tuple(stages),
    )


def _stage_span(
    stage: str,
    jobs: Sequence[JobView],
    runs: Sequence[TraceSpan],
    common: Mapping[str, AttributeValue],
) -> TraceSpan:
    failed = [job.name for job in jobs if job.status == "failed" and not job.failure_allowed]
    return TraceSpan(
        name=f"stage {stage}",
        started_at=min(run.started_at for run in runs),
        finished_at=max(run.finished_at for run in runs),
        attributes={
            **common,
            "ferrous.stage.name": stage,
            "ferrous.stage.index": jobs[0].stage_index,
        },
        error=f"failed: {', '.join(failed)}" if failed else None,
        children=tuple(runs),
    )


def _job_spans(
    job: JobView,
    attempts: Sequence[Attempt],
    build_end: datetime,
    common: Mapping[str, AttributeValue],
) -> list[TraceSpan]:
    base: dict[str, AttributeValue] = {
        **common,
        "cicd.pipeline.task.name": job.name,
        "ferrous.job.id": job.id,
        "ferrous.stage.name": job.stage,
    }
    if not attempts:  # never ran
        at = job.finished_at or build_end
        return [
            TraceSpan(
                name=job.name,
                started_at=at,
                finished_at=at,
                attributes={
                    **base,
                    "cicd.pipeline.task.run.id": job.id,
                    "cicd.pipeline.task.run.result": RESULTS.get(job.status, job.status),
                },
            )
        ]
    return [_attempt_span(job, attempt, base, build_end) for attempt in attempts]


def _attempt_span(
    job: JobView, attempt: Attempt, base: Mapping[str, AttributeValue], build_end: datetime
) -> TraceSpan:
    finished = attempt.finished_at or build_end  # a finished attempt has its times
    started = attempt.started_at or finished
    result = _attempt_result(attempt)
    attributes: dict[str, AttributeValue] = {
        **base,
        "cicd.pipeline.task.run.id": f"{job.id}:{attempt.number}",
        "cicd.pipeline.task.run.result": result,
        "ferrous.job.attempt": attempt.number,
    }
    if attempt.agent_id is not None:
        attributes["cicd.worker.id"] = attempt.agent_id
    if attempt.exit_code is not None:
        attributes["ferrous.job.exit_code"] = attempt.exit_code
    error = None
    if attempt.status.value == "failed":
        error = attempt.failure_reason or "script_failure"
        attributes["error.type"] = error
        if attempt.number == job.attempt and job.failure_allowed:
            attributes["ferrous.job.failure_allowed"] = True
    phases = tuple(
        TraceSpan(
            name=phase.name,
            started_at=phase.started_at,
            finished_at=phase.finished_at,
            attributes={
                "cicd.pipeline.task.name": job.name,
                "ferrous.phase.name": phase.name,
            },
        )
        for phase in attempt.phases
    )
    started, finished = _bounds(started, finished, phases)
    return TraceSpan(
        name=job.name,
        started_at=started,
        finished_at=finished,
        attributes=attributes,
        error=error,
        children=phases,
    )


def _attempt_result(attempt: Attempt) -> str:
    status = attempt.status.value
    if status != "failed":
        return RESULTS.get(status, status)
    if attempt.failure_reason == TIMEOUT_FAILURE:
        return "timeout"
    if attempt.failure_reason in SYSTEM_REASONS:
        return "error"
    return "failure"


def _bounds(
    started: datetime, finished: datetime, children: Iterable[TraceSpan]
) -> tuple[datetime, datetime]:
    """A parent's times, widened to hold its children (clocks of agents and servers differ)."""
    for child in children:
        started = min(started, child.started_at)
        finished = max(finished, child.finished_at)
    return started, max(started, finished)


async def trace_finished_build(
    build_id: str,
    queries: Queries,
    uow_factory: Callable[[], UnitOfWork],
    tracer: BuildTracer,
) -> None:
    """Read a finished build (its view, and its jobs' attempts with their phases) and hand
    its trace to ``tracer``; nothing is read when the tracer is off."""
    if not tracer.enabled:
        return
    view = await queries.get_build(build_id)
    async with uow_factory() as uow:
        build = await uow.builds.get(build_id)
    attempts = {job.id: list(job.history) for job in build.jobs.values()}
    tracer.export(build_id, build_spans(view, attempts))
    log.debug("build_traced", build_id=build_id, jobs=len(view.jobs))


def build_trace_handler(
    queries: Queries, uow_factory: Callable[[], UnitOfWork], tracer: BuildTracer
) -> Callable[[Event], Awaitable[None]]:
    """The ``BuildCompleted`` handler that emits the build's trace (a failure is logged,
    never raised: the build is finished whatever becomes of its trace)."""

    async def on_build_completed(event: Event) -> None:
        if not isinstance(event, BuildCompleted):
            return
        try:
            await trace_finished_build(event.build_id, queries, uow_factory, tracer)
        except Exception:
            log.exception("build_trace_failed", build_id=event.build_id)

    return on_build_completed
