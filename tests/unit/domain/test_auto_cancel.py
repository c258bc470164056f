"""Auto-cancel of an older build by a newer one of its ref, per the older build's mode."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ferrous.domain.auto_cancel import AutoCancel, auto_cancel
from ferrous.domain.build import Build, JobDefinition
from ferrous.domain.events import BuildAutoCanceled, BuildCompleted, JobCancelRequested
from ferrous.domain.statuses import BuildStatus, JobStatus, When

S, B = JobStatus, BuildStatus
T0 = datetime(2025, 1, 31, 12, 0, tzinfo=UTC)
LATER = T0 + timedelta(minutes=5)


def define(
    name: str, stage: int = 0, *, when: When = When.ON_SUCCESS, **extra: object
) -> JobDefinition:
    extra.setdefault("allow_failure", when == When.MANUAL)  # GitLab's default for manual
    return JobDefinition(
        name=name,
        stage=f"s{stage}",
        stage_index=stage,
        when=when,
        needs=None,
        **extra,  # type: ignore[arg-type]
    )


def build(*definitions: JobDefinition, mode: AutoCancel = AutoCancel.CONSERVATIVE) -> Build:
    made = Build.create(
        project_id="p",
        pipeline_id="pl",
        number=1,
        ref="main",
        sha="a" * 40,
        source="push",
        variables={},
        jobs=[(d, {"name": d.name}) for d in definitions],
        problems=[],
        now=T0,
        auto_cancel=mode,
    )
    made.events.clear()
    return made


def newer() -> Build:
    return build(define("x"))


def statuses(old: Build) -> dict[str, str]:
    return {name: job.status.value for name, job in old.jobs.items()}


def start(old: Build, name: str) -> None:
    old.start_job(old.jobs[name].id, "agent-1", T0)
    old.events.clear()


def test_a_build_whose_jobs_have_not_started_is_canceled_whole() -> None:
    old = build(define("compile"), define("test", 1), define("deploy", 2, when=When.MANUAL))
    assert statuses(old) == {"compile": "pending", "test": "created", "deploy": "created"}
    by = newer()

    assert auto_cancel(old, by=by, now=LATER) == ["compile", "test", "deploy"]

    assert old.status == B.CANCELED
    assert set(statuses(old).values()) == {"canceled"}
    assert old.events == [
        BuildCompleted(build_id=old.id, status="canceled"),
        BuildAutoCanceled(build_id=old.id, canceled_by=by.id, jobs=("compile", "test", "deploy")),
    ]


def test_conservative_cancels_running_interruptible_jobs() -> None:
    old = build(define("lint", interruptible=True), define("unit", interruptible=True))
    start(old, "lint")

    assert auto_cancel(old, by=newer(), now=LATER) == ["lint", "unit"]

    lint = old.jobs["lint"]
    assert (lint.status, lint.failure_reason, lint.finished_at) == (S.CANCELED, "canceled", LATER)
    assert [a.status for a in lint.history] == [S.CANCELED]
    assert JobCancelRequested(build_id=old.id, job_id=lint.id, agent_id="agent-1") in old.events


def test_conservative_leaves_a_build_once_a_non_interruptible_job_started() -> None:
    old = build(define("migrate"), define("unit", 1, interruptible=True))
    start(old, "migrate")
    old.complete_job(old.jobs["migrate"].id, attempt=1, exit_code=0, failure_reason=None, now=T0)
    old.events.clear()
    assert statuses(old) == {"migrate": "success", "unit": "pending"}

    assert auto_cancel(old, by=newer(), now=LATER) == []

    assert statuses(old) == {"migrate": "success", "unit": "pending"}
    assert old.events == []


def test_a_started_non_interruptible_job_counts_even_while_it_waits_for_a_retry() -> None:
    old = build(define("flaky", retry_max=1))
    start(old, "flaky")
    old.complete_job(old.jobs["flaky"].id, attempt=1, exit_code=1, failure_reason=None, now=T0)
    assert old.jobs["flaky"].status == S.PENDING  # queued for its second attempt
    assert auto_cancel(old, by=newer(), now=LATER) == []


def test_interruptible_mode_cancels_only_interruptible_jobs_and_the_rest_goes_on() -> None:
    old = build(
        define("unit", interruptible=True),
        define("deploy", interruptible=False),
        define("report", 1),  # waits for both: skipped once unit is canceled
        mode=AutoCancel.INTERRUPTIBLE,
    )
    start(old, "unit")
    start(old, "deploy")

    assert auto_cancel(old, by=newer(), now=LATER) == ["unit"]

    assert statuses(old) == {"unit": "canceled", "deploy": "running", "report": "created"}
    assert old.status == B.RUNNING
    old.complete_job(old.jobs["deploy"].id, attempt=1, exit_code=0, failure_reason=None, now=LATER)
    assert statuses(old) == {"unit": "canceled", "deploy": "success", "report": "skipped"}
    assert old.status == B.CANCELED


def test_interruptible_mode_with_no_interruptible_job_changes_nothing() -> None:
    old = build(define("deploy"), mode=AutoCancel.INTERRUPTIBLE)
    assert auto_cancel(old, by=newer(), now=LATER) == []
    assert old.status == B.PENDING
    assert old.events == []


def test_mode_none_is_never_auto_canceled() -> None:
    old = build(define("unit", interruptible=True), mode=AutoCancel.NONE)
    assert auto_cancel(old, by=newer(), now=LATER) == []
    assert statuses(old) == {"unit": "pending"}


@pytest.mark.parametrize("mode", list(AutoCancel))
def test_finished_builds_and_builds_waiting_on_a_manual_job_are_left_alone(
    mode: AutoCancel,
) -> None:
    waiting = build(
        define("deploy", when=When.MANUAL, allow_failure=False, interruptible=True), mode=mode
    )
    assert waiting.status == B.MANUAL
    assert auto_cancel(waiting, by=newer(), now=LATER) == []
    done = build(define("unit", interruptible=True), mode=mode)
    done.cancel(T0)
    assert auto_cancel(done, by=newer(), now=LATER) == []


def test_cancel_jobs_refuses_a_finished_job() -> None:
    old = build(define("unit"))
    old.cancel(T0)
    with pytest.raises(Exception, match="already canceled"):
        old.cancel_jobs(["unit"], LATER)
