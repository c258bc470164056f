"""Which rules hear of a finished build, and what they are told.

Both units of work call ``plan_deliveries`` at commit for each build that finished in that
transaction (a ``BuildCompleted`` event), with the project's rules and the status of the
previous finished build of the same pipeline and ref; they insert what it returns next to
the outbox events, so a notice is never lost to a crash after the commit. The notice is
stored with the delivery and sent as stored: a retry says what the first attempt said.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from ferrous.application.ports import UnitOfWork
from ferrous.domain.build import Build
from ferrous.domain.ids import new_id
from ferrous.domain.notification import (
    EVENT_TEST,
    BuildNotice,
    FailedJob,
    NotificationDelivery,
    NotificationRule,
    build_event,
)
from ferrous.domain.statuses import JobStatus

FINAL = ("success", "failed", "canceled", "skipped")


@dataclass(frozen=True, slots=True, kw_only=True)
class PlannedDelivery:
    """A delivery to insert: one notice for one rule."""

    id: str
    rule_id: str
    project_id: str
    build_id: str | None
    completion: int | None  # the build's version at commit: one delivery per completion
    event: str
    notice: BuildNotice
    created_at: datetime


def trial_delivery(rule: NotificationRule, notice: BuildNotice, now: datetime) -> PlannedDelivery:
    """The delivery a person asks for to try a rule: of no build, so never deduplicated."""
    return PlannedDelivery(
        id=new_id(),
        rule_id=rule.id,
        project_id=rule.project_id,
        build_id=None,
        completion=None,
        event=EVENT_TEST,
        notice=notice,
        created_at=now,
    )


def _variable(build: Build, name: str) -> str | None:
    """A predefined variable as the jobs saw it (the build row does not keep the commit)."""
    for job in build.jobs.values():
        variables = (job.spec or {}).get("variables")
        if isinstance(variables, dict) and isinstance(variables.get(name), str):
            return variables[name] or None
    return build.variables.get(name) or None


def build_notice(
    build: Build, *, project_name: str, pipeline_name: str, previous_status: str | None
) -> BuildNotice:
    duration = None
    if build.started_at is not None and build.finished_at is not None:
        duration = round((build.finished_at - build.started_at).total_seconds(), 3)
    failed = tuple(
        FailedJob(
            name=job.definition.name,
            stage=job.definition.stage,
            failure_reason=job.failure_reason,
            exit_code=job.exit_code,
        )
        for job in build.jobs.values()
        if job.status is JobStatus.FAILED and not job.failure_allowed
    )
    return BuildNotice(
        project_id=build.project_id,
        project_name=project_name,
        pipeline_name=pipeline_name,
        build_id=build.id,
        build_number=build.number,
        status=build.status.value,
        previous_status=previous_status,
        ref=build.ref,
        sha=build.sha,
        commit_message=_variable(build, "CI_COMMIT_MESSAGE"),
        commit_author=_variable(build, "CI_COMMIT_AUTHOR"),
        started_at=build.started_at,
        finished_at=build.finished_at,
        duration_seconds=duration,
        failed_jobs=failed,
    )


def plan_deliveries(
    build: Build,
    rules: Sequence[NotificationRule],
    *,
    project_name: str,
    pipeline_name: str,
    previous_status: str | None,
    now: datetime,
) -> list[PlannedDelivery]:
    """One delivery per enabled rule of the build's project that wants this outcome."""
    status = build.status.value
    matching = [r for r in rules if r.matches(status, previous_status, build.ref)]
    if not matching:
        return []
    notice = build_notice(
        build,
        project_name=project_name,
        pipeline_name=pipeline_name,
        previous_status=previous_status,
    )
    event = build_event(status, previous_status)
    return [
        PlannedDelivery(
            id=new_id(),
            rule_id=rule.id,
            project_id=build.project_id,
            build_id=build.id,
            completion=build.version,
            event=event,
            notice=notice,
            created_at=now,
        )
        for rule in matching
    ]


def sample_notice(project_id: str, project_name: str) -> BuildNotice:
    """What a test delivery (``ping``) carries: a made-up failed build, clearly labelled."""
    return BuildNotice(
        project_id=project_id,
        project_name=project_name,
        pipeline_name="test",
        build_id="test",
        build_number=0,
        status="failed",
        previous_status=None,
        ref="test",
        sha="0" * 40,
        commit_message="A test notification from Ferrous CI",
        failed_jobs=(
            FailedJob(name="test", stage="test", failure_reason="script_failure", exit_code=1),
        ),
    )


class NotificationReads:
    """The API's reads of rules and delivery logs, each in a short unit of work of its own."""

    def __init__(self, uow_factory: Callable[[], UnitOfWork]) -> None:
        self._uow_factory = uow_factory

    async def rules(self, project_id: str) -> list[NotificationRule]:
        async with self._uow_factory() as uow:
            return await uow.notifications.list_rules(project_id)

    async def rule(self, project_id: str, rule_id: str) -> NotificationRule:
        async with self._uow_factory() as uow:
            return await uow.notifications.get_rule(project_id, rule_id)

    async def deliveries(
        self, project_id: str, rule_id: str, limit: int, before: str | None = None
    ) -> list[NotificationDelivery]:
        """Raises ``NotFound`` when the rule is not the project's."""
        async with self._uow_factory() as uow:
            await uow.notifications.get_rule(project_id, rule_id)
            return await uow.notifications.deliveries(rule_id, limit, before)
