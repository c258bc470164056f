"""Which finished builds a notification rule hears of (GitLab's and Buildkite's words), and
the checks a rule must pass."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ferrous.domain.errors import InvalidValue
from ferrous.domain.notification import (
    BuildNotice,
    FailedJob,
    NotificationRule,
    NotifyChannel,
    NotifyOn,
    build_event,
)

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def rule(*on: NotifyOn, branches: tuple[str, ...] = (), enabled: bool = True) -> NotificationRule:
    return NotificationRule.create(
        project_id="p",
        name="r",
        channel=NotifyChannel.WEBHOOK,
        target="https://example.com/hook",
        on=frozenset(on),
        branches=branches,
        enabled=enabled,
        created_at=T0,
    )


F, R, S, A = NotifyOn.FAILURE, NotifyOn.RECOVERY, NotifyOn.SUCCESS, NotifyOn.ALWAYS


@pytest.mark.parametrize(
    ("on", "status", "previous", "told"),
    [
        ((F,), "failed", None, True),
        ((F,), "failed", "failed", True),  # every failure, not only the first
        ((F,), "success", "failed", False),
        ((F,), "canceled", None, False),
        ((R,), "success", "failed", True),
        ((R,), "success", "success", False),
        ((R,), "success", None, False),  # the first build of a ref recovers from nothing
        ((R,), "success", "canceled", False),  # only a failure is recovered from
        ((R,), "failed", "failed", False),
        ((S,), "success", None, True),
        ((S,), "success", "failed", True),
        ((S,), "failed", None, False),
        ((A,), "canceled", None, True),
        ((A,), "skipped", None, True),
        ((A,), "failed", None, True),
        ((A,), "running", None, False),  # only final statuses
        ((F, R), "success", "failed", True),
        ((F, R), "success", "success", False),
    ],
)
def test_outcomes(on: tuple[NotifyOn, ...], status: str, previous: str | None, told: bool) -> None:
    assert rule(*on).matches(status, previous, "main") is told


@pytest.mark.parametrize(
    ("branches", "ref", "told"),
    [
        ((), "anything/at/all", True),
        (("main",), "main", True),
        (("main",), "mainline", False),
        (("release/*",), "release/1.2", True),
        (("release/*",), "releases", False),
        (("main", "v*"), "v1.0.0", True),
        (("Main",), "main", False),  # case matters, as in git
    ],
)
def test_branch_globs(branches: tuple[str, ...], ref: str, told: bool) -> None:
    assert rule(F, branches=branches).matches("failed", None, ref) is told


def test_a_disabled_rule_hears_nothing() -> None:
    assert not rule(A, enabled=False).matches("failed", None, "main")


@pytest.mark.parametrize(
    ("status", "previous", "event"),
    [
        ("failed", None, "build.failed"),
        ("success", "failed", "build.recovered"),
        ("success", None, "build.succeeded"),
        ("canceled", "failed", "build.canceled"),
        ("skipped", None, "build.skipped"),
    ],
)
def test_events(status: str, previous: str | None, event: str) -> None:
    assert build_event(status, previous) == event


@pytest.mark.parametrize(
    ("channel", "target"),
    [
        (NotifyChannel.WEBHOOK, "ftp://example.com"),
        (NotifyChannel.SLACK, "hooks.slack.com/services/x"),
        (NotifyChannel.EMAIL, "not-an-address"),
        (NotifyChannel.EMAIL, "a@example.com, b@nowhere"),
        (NotifyChannel.EMAIL, " , "),
    ],
)
def test_targets_are_checked(channel: NotifyChannel, target: str) -> None:
    with pytest.raises(InvalidValue):
        NotificationRule.create(
            project_id="p",
            name="r",
            channel=channel,
            target=target,
            on=frozenset({F}),
            created_at=T0,
        )


def test_a_rule_needs_an_outcome() -> None:
    with pytest.raises(InvalidValue):
        rule()


def test_a_notice_survives_json() -> None:
    notice = BuildNotice(
        project_id="p",
        project_name="app",
        pipeline_name="default",
        build_id="b",
        build_number=7,
        status="success",
        previous_status="failed",
        ref="main",
        sha="f" * 40,
        commit_message="Fix it\n\nat last",
        commit_author="Ada <ada@example.com>",
        started_at=T0,
        finished_at=T0,
        duration_seconds=0.0,
        failed_jobs=(FailedJob(name="lint", stage="test", failure_reason=None, exit_code=1),),
        url="https://ci/builds/b",
    )
    assert BuildNotice.from_json(notice.to_json()) == notice
    assert notice.title == "app / default #7 recovered on main"
