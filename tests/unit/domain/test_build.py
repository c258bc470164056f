"""The Build aggregate: its commands, the events they record, its bookkeeping and its refusals.

Progression itself (who starts, who is skipped, the derived status) is tested exhaustively in
``test_progression*``; here the aggregate is driven the way the use cases drive it, and the
checks are on what it keeps (statuses, attempts, timestamps) and what it records (events).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ferrous.domain.build import (
    RUNNER_SYSTEM_FAILURE,
    SCRIPT_FAILURE,
    TIMEOUT_FAILURE,
    Build,
    Job,
    JobDefinition,
)
from ferrous.domain.errors import Conflict, InvalidTransition, NotFound
from ferrous.domain.events import (
    BuildCompleted,
    BuildCreated,
    BuildStarted,
    Event,
    JobCancelRequested,
    JobCompleted,
    JobQueued,
    JobStarted,
)
from ferrous.domain.statuses import BuildStatus, JobStatus, When

S = JobStatus
B = BuildStatus
T0 = datetime(2025, 1, 31, 12, 0, tzinfo=UTC)
AGENT = "agent-1"


def minutes(n: float) -> datetime:
    return T0 + timedelta(minutes=n)


def define(
    name: str,
    stage: int = 0,
    *,
    when: When = When.ON_SUCCESS,
    needs: Iterable[str] | None = None,
    allow_failure: bool | None = None,
    **extra: Any,
) -> JobDefinition:
    """A job definition; as in GitLab, ``when: manual`` defaults to ``allow_failure: true``."""
    return JobDefinition(
        name=name,
        stage=f"stage{stage}",
        stage_index=stage,
        when=when,
        needs=None if needs is None else tuple(needs),
        allow_failure=(when == When.MANUAL) if allow_failure is None else allow_failure,
        **extra,
    )


def make_build(*definitions: JobDefinition, problems: list[dict[str, Any]] | None = None) -> Build:
    return Build.create(
        project_id="project-1",
        pipeline_id="pipeline-1",
        number=7,
        ref="main",
        sha="a" * 40,
        source="push",
        variables={"DEPLOY": "yes"},
        jobs=[(d, {"name": d.name, "script": ["true"]}) for d in definitions],
        problems=problems or [],
        now=T0,
    )


def statuses(build: Build) -> dict[str, JobStatus]:
    return {name: job.status for name, job in build.jobs.items()}


def summary(build: Build) -> str:
    """``"build=success test=pending"``: every job's status, in plan order."""
    return " ".join(f"{name}={job.status}" for name, job in build.jobs.items())


def names(events: Iterable[Event]) -> list[str]:
    return [type(event).__name__ for event in events]


def drain(build: Build) -> list[Event]:
    """The events recorded since the last drain (what a unit of work would take)."""
    events = list(build.events)
    build.events.clear()
    return events


def run(build: Build, name: str, exit_code: int | None = 0, at: datetime = T0) -> Job:
    """Start a pending job and report its result."""
    job = build.start_job(build.jobs[name].id, AGENT, at)
    return build.complete_job(job.id, attempt=job.attempt, exit_code=exit_code,
                              failure_reason=None, now=at)  # fmt: skip


def completed_event(job: Job, status: str, attempt: int, code: int | None, reason: str | None
                    ) -> JobCompleted:  # fmt: skip
    return JobCompleted(build_id=job.build_id, job_id=job.id, name=job.name, status=status,
                        attempt=attempt, exit_code=code, failure_reason=reason)  # fmt: skip


def created_event(build: Build, status: str) -> BuildCreated:
    return BuildCreated(build_id=build.id, project_id="project-1", pipeline_id="pipeline-1",
                        number=7, ref="main", sha="a" * 40, status=status)  # fmt: skip


# --- create -------------------------------------------------------------------------------


def test_create_queues_the_first_stage_and_records_the_build():
    build = make_build(define("build"), define("lint"), define("test", 1), define("deploy", 2))

    assert build.status == B.PENDING
    assert summary(build) == "build=pending lint=pending test=created deploy=created"
    assert (build.created_at, build.started_at, build.finished_at) == (T0, None, None)
    assert build.jobs["build"].queued_at == T0
    assert build.jobs["test"].queued_at is None
    assert all(job.build_id == build.id and job.attempt == 0 for job in build.jobs.values())
    assert build.variables == {"DEPLOY": "yes"}
    created, *queued = build.events
    assert created == created_event(build, "created")
    assert queued == [
        JobQueued(build_id=build.id, job_id=build.jobs[n].id, name=n, tags=())
        for n in ("build", "lint")
    ]


def test_create_drops_never_jobs_and_keeps_the_plan_order():
    build = make_build(define("b", 1), define("gone", when=When.NEVER), define("a"))
    assert list(build.jobs) == ["b", "a"]


def test_a_config_error_makes_a_failed_build_without_jobs():
    problems = [
        {"severity": "warning", "message": "stage listed twice"},
        {"severity": "error", "message": "jobs.test.needs[0]: no job named nope"},
    ]
    build = make_build(define("test"), problems=problems)

    assert build.status == B.FAILED
    assert build.failure_reason == "config_error"
    assert build.finished_at == T0
    assert build.jobs == {}
    assert build.problems == problems
    assert build.events == [
        created_event(build, "failed"),
        BuildCompleted(build_id=build.id, status="failed"),
    ]


def test_warnings_alone_do_not_stop_a_build():
    build = make_build(define("test"), problems=[{"severity": "warning", "message": "hm"}])
    assert build.status == B.PENDING
    assert build.problems == [{"severity": "warning", "message": "hm"}]


@pytest.mark.parametrize(
    "definitions",
    [
        pytest.param([], id="no jobs"),
        pytest.param([define("x", when=When.NEVER)], id="only never"),
        pytest.param([define("cleanup", when=When.ON_FAILURE)], id="only on_failure"),
    ],
)
def test_a_build_with_nothing_to_run_is_skipped_at_once(definitions):
    build = make_build(*definitions)
    assert build.status == B.SKIPPED
    assert build.finished_at == T0
    assert build.started_at is None
    assert names(build.events) == ["BuildCreated", "BuildCompleted"]
    assert build.events[-1] == BuildCompleted(build_id=build.id, status="skipped")


def test_a_delayed_first_job_is_scheduled_for_its_start_time():
    build = make_build(define("later", when=When.DELAYED, start_in=90))
    job = build.jobs["later"]
    assert (job.status, build.status) == (S.SCHEDULED, B.SCHEDULED)
    assert job.scheduled_for == T0 + timedelta(seconds=90)
    assert job.queued_at is None
    assert names(build.events) == ["BuildCreated"]


def test_a_blocking_manual_job_blocks_the_build():
    build = make_build(define("approve", when=When.MANUAL, allow_failure=False), define("go", 1))
    assert summary(build) == "approve=manual go=created"
    assert build.status == B.MANUAL
    assert not build.status.is_finished


# --- start_job ----------------------------------------------------------------------------


def test_start_job_begins_an_attempt_and_starts_the_build_once():
    build = make_build(define("a"), define("b"))
    drain(build)

    job = build.start_job(build.jobs["a"].id, AGENT, minutes(1))
    build.start_job(build.jobs["b"].id, "agent-2", minutes(2))

    assert (job.status, job.attempt, job.agent_id) == (S.RUNNING, 1, AGENT)
    assert job.started_at == minutes(1)
    assert (build.status, build.started_at) == (B.RUNNING, minutes(1))
    assert drain(build) == [
        JobStarted(build_id=build.id, job_id=job.id, agent_id=AGENT, attempt=1),
        BuildStarted(build_id=build.id),
        JobStarted(build_id=build.id, job_id=build.jobs["b"].id, agent_id="agent-2", attempt=1),
    ]


def test_only_a_pending_job_starts():
    build = make_build(define("a"), define("b", 1), define("m", when=When.MANUAL))
    with pytest.raises(InvalidTransition):
        build.start_job(build.jobs["b"].id, AGENT, T0)  # created
    with pytest.raises(InvalidTransition):
        build.start_job(build.jobs["m"].id, AGENT, T0)  # manual
    build.start_job(build.jobs["a"].id, AGENT, T0)
    with pytest.raises(InvalidTransition):
        build.start_job(build.jobs["a"].id, AGENT, T0)  # running already
    with pytest.raises(NotFound):
        build.start_job("no-such-job", AGENT, T0)


# --- complete_job -------------------------------------------------------------------------


SF, RSF, TO = SCRIPT_FAILURE, RUNNER_SYSTEM_FAILURE, TIMEOUT_FAILURE


# fmt: off
@pytest.mark.parametrize(
    ("extra", "exit_code", "reason", "status", "recorded", "allowed", "build_status"),
    [
        ({}, 0, None, S.SUCCESS, None, False, B.SUCCESS),
        ({}, 1, None, S.FAILED, SF, False, B.FAILED),
        ({}, None, None, S.FAILED, SF, False, B.FAILED),
        ({}, 0, TO, S.FAILED, TO, False, B.FAILED),
        ({}, 137, TO, S.FAILED, TO, False, B.FAILED),
        ({"allow_failure": True}, 1, None, S.FAILED, SF, True, B.SUCCESS),
        ({"allow_failure": True}, 0, None, S.SUCCESS, None, False, B.SUCCESS),
        ({"allow_failure_exit_codes": (3, 4)}, 3, None, S.FAILED, SF, True, B.SUCCESS),
        ({"allow_failure_exit_codes": (3,)}, 1, None, S.FAILED, SF, False, B.FAILED),
        ({"allow_failure_exit_codes": (3,)}, None, RSF, S.FAILED, RSF, False, B.FAILED),
        ({"retry_max": 2, "retry_when": (RSF,)}, 1, None, S.FAILED, SF, False, B.FAILED),
        ({"retry_max": 2, "retry_exit_codes": (137,)}, 1, None, S.FAILED, SF, False, B.FAILED),
    ],
)
def test_complete_job_table(extra, exit_code, reason, status, recorded, allowed, build_status):
    build = make_build(define("job", **extra))
    job = build.start_job(build.jobs["job"].id, AGENT, minutes(1))
    drain(build)

    build.complete_job(
        job.id, attempt=1, exit_code=exit_code, failure_reason=reason, now=minutes(2)
    )

    assert (job.status, job.failure_reason, job.exit_code) == (status, recorded, exit_code)
    assert job.failure_allowed is allowed
    assert job.finished_at == build.finished_at == minutes(2)
    assert build.status == build_status
    assert [
        (a.number, a.status, a.agent_id, a.exit_code, a.failure_reason) for a in job.history
    ] == [(1, status, AGENT, exit_code, recorded)]
    assert job.history[0].started_at == minutes(1)
    completed, finished = drain(build)
    assert completed == completed_event(job, status.value, 1, exit_code, recorded)
    assert finished == BuildCompleted(build_id=build.id, status=build_status.value)
# fmt: on


def test_a_success_queues_the_next_stage():
    build = make_build(define("build"), define("test", 1), define("deploy", 2))
    drain(build)
    run(build, "build", at=minutes(1))
    events = drain(build)
    assert names(events) == ["JobStarted", "BuildStarted", "JobCompleted", "JobQueued"]
    test = build.jobs["test"]
    assert events[-1] == JobQueued(build_id=build.id, job_id=test.id, name="test", tags=())
    assert summary(build) == "build=success test=pending deploy=created"
    assert build.jobs["test"].queued_at == minutes(1)
    assert build.status == B.RUNNING


def test_a_failure_skips_what_follows_and_runs_on_failure_jobs():
    build = make_build(
        define("test"), define("deploy", 1), define("report", 1, when=When.ON_FAILURE)
    )
    run(build, "test", exit_code=2, at=minutes(1))
    assert summary(build) == "test=failed deploy=skipped report=pending"
    assert build.jobs["deploy"].finished_at == minutes(1)
    assert build.status == B.RUNNING
    run(build, "report", at=minutes(2))
    assert (build.status, build.finished_at) == (B.FAILED, minutes(2))


# fmt: off
@pytest.mark.parametrize(
    ("retry", "attempt", "reason", "exit_code", "earns"),
    [
        ({}, 1, SF, 1, False),
        ({"retry_max": 1}, 1, SF, 1, True),
        ({"retry_max": 1}, 2, SF, 1, False),
        ({"retry_max": 2}, 2, RSF, None, True),
        ({"retry_max": 2}, 3, RSF, None, False),
        ({"retry_max": 2, "retry_when": (RSF,)}, 1, SF, 1, False),
        ({"retry_max": 2, "retry_when": (RSF,)}, 1, RSF, None, True),
        ({"retry_max": 2, "retry_when": (SF, TO)}, 1, TO, 1, True),
        ({"retry_max": 2, "retry_exit_codes": (137,)}, 1, SF, 137, True),
        ({"retry_max": 2, "retry_exit_codes": (137,)}, 1, SF, 1, False),
        ({"retry_max": 2, "retry_exit_codes": (137,)}, 1, RSF, None, False),
        ({"retry_max": 2, "retry_when": (RSF,), "retry_exit_codes": (137,)}, 1, SF, 137, False),
    ],
)
def test_earns_retry_table(retry, attempt, reason, exit_code, earns):
    assert define("job", **retry).earns_retry(attempt, reason, exit_code) is earns
# fmt: on


def test_a_retried_failure_queues_a_new_attempt_until_retry_max():
    build = make_build(define("flaky", retry_max=2), define("after", 1))
    drain(build)
    for attempt in (1, 2):
        job = run(build, "flaky", exit_code=1, at=minutes(attempt))
        assert (job.status, job.agent_id, job.queued_at) == (S.PENDING, None, minutes(attempt))
        assert (job.attempt, job.failure_reason) == (attempt, SCRIPT_FAILURE)
        assert build.jobs["after"].status == S.CREATED
        assert build.status == B.RUNNING
    job = run(build, "flaky", exit_code=1, at=minutes(3))
    assert (job.status, job.attempt, job.finished_at) == (S.FAILED, 3, minutes(3))
    assert [(a.number, a.status) for a in job.history] == [(n, S.FAILED) for n in (1, 2, 3)]
    assert build.jobs["after"].status == S.SKIPPED
    assert build.status == B.FAILED
    events = drain(build)
    assert names(events) == ["JobStarted", "BuildStarted", "JobCompleted", "JobQueued",
                             "JobStarted", "JobCompleted", "JobQueued",
                             "JobStarted", "JobCompleted", "BuildCompleted"]  # fmt: skip
    completed = [(e.attempt, e.status) for e in events if isinstance(e, JobCompleted)]
    assert completed == [(1, "failed"), (2, "failed"), (3, "failed")]


def test_a_retried_job_that_then_succeeds_lets_the_build_succeed():
    build = make_build(define("flaky", retry_max=1), define("after", 1))
    run(build, "flaky", exit_code=1)
    run(build, "flaky", exit_code=0)
    run(build, "after")
    assert build.jobs["flaky"].attempt == 2
    assert build.status == B.SUCCESS


def test_lose_job_is_a_runner_system_failure():
    build = make_build(define("job"))
    job = build.start_job(build.jobs["job"].id, AGENT, T0)
    build.lose_job(job.id, minutes(5))
    assert (job.status, job.exit_code, job.failure_reason) == (S.FAILED, None, RSF)
    assert job.finished_at == minutes(5)
    assert build.status == B.FAILED


def test_a_lost_job_is_retried_when_its_policy_names_runner_system_failure():
    build = make_build(define("job", retry_max=1, retry_when=(RUNNER_SYSTEM_FAILURE,)))
    job = build.start_job(build.jobs["job"].id, AGENT, T0)
    build.lose_job(job.id, minutes(5))
    assert (job.status, job.agent_id, job.queued_at) == (S.PENDING, None, minutes(5))
    assert build.status == B.RUNNING


# --- repeated and wrong reports -----------------------------------------------------------


def test_a_repeated_report_of_the_same_attempt_is_accepted_once():
    build = make_build(define("job"), define("next", 1))
    job = run(build, "job", exit_code=0)
    before = (statuses(build), build.status, len(build.events))

    again = build.complete_job(job.id, attempt=1, exit_code=0, failure_reason=None, now=minutes(9))

    assert again is job
    assert (statuses(build), build.status, len(build.events)) == before
    assert job.finished_at == T0
    assert len(job.history) == 1


def test_a_repeated_failure_report_after_its_retry_began_changes_nothing():
    build = make_build(define("flaky", retry_max=1))
    run(build, "flaky", exit_code=1)
    job = build.start_job(build.jobs["flaky"].id, "agent-2", minutes(1))
    count = len(build.events)
    build.complete_job(job.id, attempt=1, exit_code=1, failure_reason=None, now=minutes(2))
    assert (job.status, job.attempt, job.agent_id) == (S.RUNNING, 2, "agent-2")
    assert len(build.events) == count


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ((0, None), (1, None)),
        ((1, None), (0, None)),
        ((0, None), (None, RUNNER_SYSTEM_FAILURE)),
        ((2, None), (3, None)),
    ],
)
def test_completing_a_job_twice_with_different_results_is_a_conflict(first, second):
    build = make_build(define("job"))
    job = build.start_job(build.jobs["job"].id, AGENT, T0)
    build.complete_job(job.id, attempt=1, exit_code=first[0], failure_reason=first[1], now=T0)
    status, count = job.status, len(build.events)
    with pytest.raises(Conflict):
        build.complete_job(job.id, attempt=1, exit_code=second[0], failure_reason=second[1], now=T0)
    assert (job.status, len(build.events)) == (status, count)


def test_a_report_for_another_attempt_or_a_job_not_running_is_a_conflict():
    build = make_build(define("job", retry_max=1), define("later", 1))
    job = build.start_job(build.jobs["job"].id, AGENT, T0)
    with pytest.raises(Conflict):
        build.complete_job(job.id, attempt=2, exit_code=0, failure_reason=None, now=T0)
    with pytest.raises(Conflict):
        build.complete_job(job.id, attempt=0, exit_code=0, failure_reason=None, now=T0)
    with pytest.raises(Conflict):  # created, never started
        build.complete_job(
            build.jobs["later"].id, attempt=1, exit_code=0, failure_reason=None, now=T0
        )
    build.complete_job(job.id, attempt=1, exit_code=1, failure_reason=None, now=T0)  # retried
    with pytest.raises(Conflict):  # pending again: attempt 2 has not begun
        build.complete_job(job.id, attempt=2, exit_code=0, failure_reason=None, now=T0)
    assert job.status == S.PENDING
    with pytest.raises(NotFound):
        build.complete_job("nope", attempt=1, exit_code=0, failure_reason=None, now=T0)


# --- cancel ---------------------------------------------------------------------------------


def test_cancel_stops_every_unfinished_job_and_finishes_the_build():
    build = make_build(define("done"), define("running"), define("waiting"),
                       define("manual", when=When.MANUAL), define("later", 1))  # fmt: skip
    run(build, "done")
    running = build.start_job(build.jobs["running"].id, AGENT, minutes(1))
    drain(build)

    build.cancel(minutes(3))

    assert (
        summary(build)
        == "done=success running=canceled waiting=canceled manual=canceled later=canceled"
    )
    assert (build.status, build.finished_at, build.started_at) == (B.CANCELED, minutes(3), T0)
    assert build.jobs["done"].finished_at == T0
    assert all(build.jobs[n].finished_at == minutes(3) for n in ("running", "waiting", "later"))
    assert running.failure_reason == "canceled"
    assert [(a.number, a.status, a.finished_at) for a in running.history] == [
        (1, S.CANCELED, minutes(3))
    ]
    assert build.jobs["waiting"].history == []
    assert drain(build) == [
        JobCancelRequested(build_id=build.id, job_id=running.id, agent_id=AGENT),
        completed_event(running, "canceled", 1, None, "canceled"),
        BuildCompleted(build_id=build.id, status="canceled"),
    ]


def test_cancel_a_blocked_build():
    build = make_build(define("approve", when=When.MANUAL, allow_failure=False))
    build.cancel(T0)
    assert (build.status, build.jobs["approve"].status) == (B.CANCELED, S.CANCELED)


@pytest.mark.parametrize("finish", ["success", "failed", "canceled", "skipped", "config"])
def test_a_finished_build_cannot_be_canceled(finish):
    if finish == "skipped":
        build = make_build()
    elif finish == "config":
        build = make_build(define("x"), problems=[{"severity": "error", "message": "bad"}])
    else:
        build = make_build(define("job"))
        if finish == "canceled":
            build.cancel(T0)
        else:
            run(build, "job", exit_code=0 if finish == "success" else 1)
    before = (build.status, len(build.events))
    with pytest.raises(InvalidTransition):
        build.cancel(minutes(1))
    assert (build.status, len(build.events)) == before


def test_the_canceled_jobs_agent_cannot_report_another_result_afterwards():
    build = make_build(define("job"))
    job = build.start_job(build.jobs["job"].id, AGENT, T0)
    build.cancel(minutes(1))
    with pytest.raises(Conflict):
        build.complete_job(job.id, attempt=1, exit_code=0, failure_reason=None, now=minutes(2))
    assert (job.status, build.status) == (S.CANCELED, B.CANCELED)


# --- play and start_due -------------------------------------------------------------------


def test_play_queues_a_manual_job_and_unblocks_the_build():
    build = make_build(define("approve", when=When.MANUAL, allow_failure=False), define("go", 1))
    drain(build)
    job = build.play("approve", minutes(1))
    assert (job.status, job.queued_at) == (S.PENDING, minutes(1))
    assert build.status == B.PENDING
    assert drain(build) == [JobQueued(build_id=build.id, job_id=job.id, name="approve", tags=())]
    run(build, "approve", at=minutes(2))
    assert build.jobs["go"].status == S.PENDING


def test_play_brings_back_the_jobs_skipped_after_an_optional_manual_job():
    build = make_build(
        define("build"), define("deploy", 1, when=When.MANUAL), define("smoke", 1, needs=["deploy"])
    )
    run(build, "build")
    assert summary(build) == "build=success deploy=manual smoke=skipped"
    assert (build.status, build.finished_at) == (B.SUCCESS, T0)
    drain(build)

    build.play("deploy", minutes(1))
    assert summary(build) == "build=success deploy=pending smoke=created"
    assert (build.status, build.finished_at) == (B.RUNNING, None)
    assert build.jobs["smoke"].finished_at is None
    run(build, "deploy", at=minutes(2))
    run(build, "smoke", at=minutes(3))
    assert (build.status, build.finished_at) == (B.SUCCESS, minutes(3))
    events = drain(build)
    assert names(events).count("BuildCompleted") == 1  # one per finish
    assert "BuildStarted" not in names(events)  # it had started before


def test_play_an_only_manual_build_starts_it():
    build = make_build(define("deploy", when=When.MANUAL))
    assert build.status == B.SKIPPED  # GitLab: only an optional manual job
    build.play("deploy", minutes(1))
    run(build, "deploy", at=minutes(2))
    assert build.status == B.SUCCESS
    assert build.started_at == build.finished_at == minutes(2)
    assert names(build.events).count("BuildCompleted") == 2
    assert names(build.events).count("BuildStarted") == 1


def test_play_a_delayed_job_early():
    build = make_build(define("later", when=When.DELAYED, start_in=3600))
    job = build.play("later", minutes(1))
    assert (job.status, job.queued_at, build.status) == (S.PENDING, minutes(1), B.PENDING)
    assert build.start_due(minutes(61)) == []


@pytest.mark.parametrize("name", ["build", "running", "test", "done"])
def test_only_manual_or_scheduled_jobs_are_played(name):
    build = make_build(define("done"), define("running"), define("build"), define("test", 1))
    run(build, "done")
    build.start_job(build.jobs["running"].id, AGENT, T0)
    before = statuses(build)
    with pytest.raises(InvalidTransition):
        build.play(name, T0)
    assert statuses(build) == before


def test_play_an_unknown_job_is_not_found():
    with pytest.raises(NotFound):
        make_build(define("a")).play("b", T0)


def test_start_due_queues_delayed_jobs_whose_time_has_come():
    build = make_build(
        define("soon", when=When.DELAYED, start_in=60),
        define("later", when=When.DELAYED, start_in=600),
    )
    drain(build)
    assert build.start_due(T0 + timedelta(seconds=59)) == []
    assert drain(build) == []
    due = build.start_due(T0 + timedelta(seconds=60))
    assert [job.name for job in due] == ["soon"]
    assert summary(build) == "soon=pending later=scheduled"
    assert build.jobs["soon"].queued_at == T0 + timedelta(seconds=60)
    assert build.status == B.RUNNING  # GitLab: pending and scheduled jobs make it running
    assert names(drain(build)) == ["JobQueued", "BuildStarted"]
    assert build.started_at == T0 + timedelta(seconds=60)
    assert [j.name for j in build.start_due(minutes(30))] == ["later"]


# --- retry ----------------------------------------------------------------------------------


def test_retry_jobs_starts_a_new_attempt_and_reconsiders_what_was_skipped():
    build = make_build(define("test"), define("deploy", 1))
    run(build, "test", exit_code=1, at=minutes(1))
    assert (build.status, build.jobs["deploy"].status) == (B.FAILED, S.SKIPPED)
    drain(build)

    [job] = build.retry_jobs(["test"], minutes(2))

    assert (job.status, job.agent_id, job.finished_at) == (S.PENDING, None, None)
    assert job.queued_at == minutes(2)
    assert build.jobs["deploy"].status == S.CREATED
    assert (build.status, build.finished_at, build.started_at) == (B.RUNNING, None, minutes(1))
    assert drain(build) == [JobQueued(build_id=build.id, job_id=job.id, name="test", tags=())]
    run(build, "test", at=minutes(3))
    run(build, "deploy", at=minutes(4))
    assert build.jobs["test"].attempt == 2
    assert [a.status for a in build.jobs["test"].history] == [S.FAILED, S.SUCCESS]
    assert (build.status, build.finished_at) == (B.SUCCESS, minutes(4))


def test_retry_jobs_clears_an_allowed_failure():
    build = make_build(define("lint", allow_failure=True))
    job = run(build, "lint", exit_code=1)
    assert job.failure_allowed
    build.retry_jobs(["lint"], T0)
    assert not job.failure_allowed


def test_a_successful_job_can_run_again():
    build = make_build(define("job"))
    run(build, "job")
    build.retry_jobs(["job"], minutes(1))
    assert (build.status, build.jobs["job"].status) == (B.RUNNING, S.PENDING)


@pytest.mark.parametrize("name", ["running", "pending", "created", "manual"])
def test_only_finished_jobs_are_retried(name):
    build = make_build(define("running"), define("pending"), define("manual", when=When.MANUAL),
                       define("created", 1))  # fmt: skip
    build.start_job(build.jobs["running"].id, AGENT, T0)
    before, count = statuses(build), len(build.events)
    with pytest.raises(InvalidTransition):
        build.retry_jobs([name], T0)
    assert (statuses(build), len(build.events)) == (before, count)


def test_retry_a_build_retries_its_failed_and_canceled_jobs():
    build = make_build(
        define("ok"), define("bad"), define("lint", allow_failure=True), define("deploy", 1)
    )
    for name, code in (("ok", 0), ("bad", 1), ("lint", 1)):
        run(build, name, exit_code=code, at=minutes(1))
    assert build.status == B.FAILED

    retried = build.retry(minutes(2))

    assert sorted(job.name for job in retried) == ["bad", "lint"]
    assert summary(build) == "ok=success bad=pending lint=pending deploy=created"
    assert (build.status, build.finished_at) == (B.RUNNING, None)


def test_retry_a_canceled_build_keeps_the_stage_order():
    """Regression: the jobs canceled before they ran used to be queued all at once."""
    build = make_build(define("build"), define("test", 1), define("deploy", 2, needs=["test"]),
                       define("approve", 2, when=When.MANUAL))  # fmt: skip
    build.start_job(build.jobs["build"].id, AGENT, T0)
    build.cancel(minutes(1))
    drain(build)

    build.retry(minutes(2))

    assert summary(build) == "build=pending test=created deploy=created approve=created"
    assert names(drain(build)) == ["JobQueued"]
    run(build, "build", at=minutes(3))
    assert statuses(build)["test"] == S.PENDING
    run(build, "test", at=minutes(4))
    assert summary(build) == "build=success test=success deploy=pending approve=manual"
    run(build, "deploy", at=minutes(5))
    assert build.status == B.SUCCESS


def test_a_retried_job_waits_for_a_retried_upstream():
    build = make_build(define("build"), define("test", 1, allow_failure=True))
    run(build, "build")
    run(build, "test", exit_code=1)
    build.retry_jobs(["build"], minutes(1))
    build.retry_jobs(["test"], minutes(2))
    assert summary(build) == "build=pending test=created"
    run(build, "build", at=minutes(3))
    assert (build.jobs["test"].status, build.jobs["test"].queued_at) == (S.PENDING, minutes(3))


def test_retry_needs_a_finished_build_with_something_to_retry():
    build = make_build(define("job"))
    with pytest.raises(InvalidTransition):
        build.retry(T0)  # pending
    build.start_job(build.jobs["job"].id, AGENT, T0)
    with pytest.raises(InvalidTransition):
        build.retry(T0)  # running
    build.complete_job(build.jobs["job"].id, attempt=1, exit_code=0, failure_reason=None, now=T0)
    with pytest.raises(InvalidTransition):
        build.retry(T0)  # nothing failed
    with pytest.raises(NotFound):
        build.retry_jobs(["nope"], T0)


# --- property: any pipeline, any results ----------------------------------------------------

EXIT_CODES = (0, 1, 2, 3, 137)
RETRY_WHENS = ("always", SCRIPT_FAILURE, RUNNER_SYSTEM_FAILURE)


@st.composite
def pipelines(draw: st.DrawFn) -> list[JobDefinition]:
    """Up to 7 jobs over up to 3 stages, with needs, whens, allow_failure and retry."""
    count = draw(st.integers(1, 7))
    stages = sorted(draw(st.lists(st.integers(0, 2), min_size=count, max_size=count)))
    jobs: list[JobDefinition] = []
    for index, stage in enumerate(stages):
        earlier = [j.name for j in jobs if j.stage_index <= stage]
        some = st.lists(st.sampled_from(earlier), unique=True, max_size=3) if earlier else None
        needs = draw(st.none() | some) if some is not None else draw(st.none() | st.just([]))
        when = draw(st.sampled_from([w for w in When if w != When.NEVER]))
        jobs.append(
            define(
                f"j{index}",
                stage,
                when=when,
                needs=needs,
                allow_failure=draw(st.booleans()),
                allow_failure_exit_codes=tuple(draw(st.sets(st.sampled_from((2, 3))))),
                retry_max=draw(st.integers(0, 2)),
                retry_when=tuple(draw(st.sets(st.sampled_from(RETRY_WHENS), min_size=1))),
                retry_exit_codes=tuple(draw(st.sets(st.sampled_from((1, 137)), max_size=1))),
                start_in=draw(st.integers(0, 600)) if when == When.DELAYED else None,
            )
        )
    return jobs


def _in(build: Build, status: JobStatus) -> list[Job]:
    return [job for job in build.jobs.values() if job.status == status]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(definitions=pipelines(), data=st.data())
def test_any_pipeline_driven_by_any_results_settles(definitions, data):
    build = make_build(*definitions)
    now = T0
    finishes = int(build.status.is_finished)
    reports: list[tuple[str, int, int | None, str | None]] = []
    for _ in range(200):
        now += timedelta(minutes=1)
        was_finished = build.status.is_finished
        pending, running = _in(build, S.PENDING), _in(build, S.RUNNING)
        manual = _in(build, S.MANUAL)
        moves = ["start"] * bool(pending) + ["complete"] * bool(running)
        moves += ["play"] * bool(manual) + ["repeat"] * bool(reports)
        if not pending and not running:
            if _in(build, S.SCHEDULED):
                now += timedelta(minutes=10)  # every start_in is under 10 minutes
                assert build.start_due(now)
                finishes += int(build.status.is_finished and not was_finished)
                continue
            if not manual or not data.draw(st.booleans(), label="play a manual job"):
                break
        move = data.draw(st.sampled_from(moves), label="move")
        if move == "start":
            job = build.jobs[data.draw(st.sampled_from([j.name for j in pending]), label="start")]
            build.start_job(job.id, AGENT, now)
        elif move == "complete":
            job = build.jobs[data.draw(st.sampled_from([j.name for j in running]), label="job")]
            result = data.draw(st.sampled_from(EXIT_CODES) | st.none(), label="exit code")
            if result is None:
                build.lose_job(job.id, now)
                reports.append((job.id, job.history[-1].number, None, RUNNER_SYSTEM_FAILURE))
            else:
                attempt = job.attempt
                build.complete_job(
                    job.id, attempt=attempt, exit_code=result, failure_reason=None, now=now
                )
                reports.append((job.id, attempt, result, None))
        elif move == "play":
            build.play(data.draw(st.sampled_from([j.name for j in manual]), label="play"), now)
        else:
            job_id, attempt, code, reason = data.draw(st.sampled_from(reports), label="repeat")
            count = len(build.events)
            build.complete_job(
                job_id, attempt=attempt, exit_code=code, failure_reason=reason, now=now
            )
            assert len(build.events) == count, "a repeated report must change nothing"
        finishes += int(build.status.is_finished and not was_finished)
    else:
        pytest.fail("the build did not settle in 200 moves")

    assert build.status.is_finished or build.status == B.MANUAL, statuses(build)
    assert not _in(build, S.PENDING)
    assert not _in(build, S.RUNNING)
    assert (build.finished_at is not None) == build.status.is_finished
    for job in build.jobs.values():
        assert job.attempt <= job.definition.retry_max + 1
        assert [a.number for a in job.history] == list(range(1, job.attempt + 1))
        assert (job.finished_at is not None) == job.status.is_finished, job

    events = build.events
    started = Counter((e.job_id, e.attempt) for e in events if isinstance(e, JobStarted))
    completed = Counter((e.job_id, e.attempt) for e in events if isinstance(e, JobCompleted))
    assert started == completed
    assert set(started.values()) <= {1}
    assert (build.started_at is not None) == bool(started)
    assert sum(isinstance(e, BuildStarted) for e in events) == int(bool(started))

    completions = [e for e in events if isinstance(e, BuildCompleted)]
    assert len(completions) == finishes
    if build.status.is_finished:
        assert completions[-1].status == build.status.value
        last = max(i for i, e in enumerate(events) if isinstance(e, BuildCompleted))
        tail = events[last + 1 :]
        assert not [e for e in tail if isinstance(e, JobQueued | JobStarted | BuildStarted)]
