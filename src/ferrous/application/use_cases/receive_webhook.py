"""A forge's webhook delivery: check its signature, record it once, create its builds.

The signature is checked before anything is read or stored. A delivery seen before (same
project, forge and delivery id) answers with its first record and creates nothing: forges
redeliver after timeouts, and people press "Redeliver". The builds and the record are one
transaction, so a failure (the repository unreachable) stores neither and the forge's retry
can still build; a redelivery racing the first is settled by the record's uniqueness.

Each enabled pipeline of the project gets a build per buildable event; pings, ignored events
(deleted branches, closed merge requests) and ``[skip ci]`` commits are recorded with why
nothing was built.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from ferrous.application.commands import ReceiveWebhook, TriggerBuild
from ferrous.application.dependencies import Dependencies
from ferrous.application.ports import UnitOfWork
from ferrous.application.use_cases.trigger_build import create_build
from ferrous.application.webhook_secret import unseal_webhook_secret
from ferrous.application.webhooks import EventKind, UnknownForge, WebhookEvent
from ferrous.domain.errors import NotFound
from ferrous.domain.project import Pipeline, Project
from ferrous.domain.webhook_delivery import DeliveryOutcome, DeliveryRecord

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class WebhookReceipt:
    record: DeliveryRecord
    redelivery: bool  # True: recorded before; nothing was created this time


async def receive_webhook(
    cmd: ReceiveWebhook, uow: UnitOfWork, deps: Dependencies
) -> WebhookReceipt:
    parser = deps.webhook_parsers.get(cmd.forge)
    if parser is None:
        raise UnknownForge(f"no forge {cmd.forge!r}: use one of {', '.join(deps.webhook_parsers)}")
    project = await _project(uow, cmd.project)
    parser.verify(cmd.headers, cmd.body, unseal_webhook_secret(project, deps.secret_box))
    delivery = parser.parse(cmd.headers, cmd.body)
    earlier = await uow.webhook_deliveries.find(project.id, cmd.forge, delivery.delivery_id)
    if earlier is not None:
        return WebhookReceipt(earlier, redelivery=True)
    pipelines = [p for p in await uow.pipelines.list_for_project(project.id) if p.enabled]
    outcomes: list[DeliveryOutcome] = []
    notes: list[str] = []
    build_ids: list[str] = []
    for event in delivery.events:
        outcome, note = _decision(event, pipelines)
        if outcome is DeliveryOutcome.BUILT:
            for pipeline in pipelines:
                build = await create_build(_trigger(event, pipeline), uow, deps)
                build_ids.append(build.id)
            note = f"{len(pipelines)} build(s) for {event.kind} {_ref(event)}"
        outcomes.append(outcome)
        notes.append(note)
    record = DeliveryRecord.create(
        project_id=project.id,
        forge=cmd.forge,
        delivery_id=delivery.delivery_id,
        event=delivery.event_name,
        received_at=deps.clock.now(),
        outcome=_overall(outcomes),
        message="; ".join(notes),
        build_ids=tuple(build_ids),
    )
    await uow.webhook_deliveries.add(record)
    await uow.commit()
    log.info(
        "webhook_received",
        project=project.name,
        forge=cmd.forge,
        delivery_id=delivery.delivery_id,
        outcome=record.outcome,
        builds=len(build_ids),
    )
    return WebhookReceipt(record, redelivery=False)


async def _project(uow: UnitOfWork, id_or_name: str) -> Project:
    try:
        return await uow.projects.get_by_name(id_or_name)
    except NotFound:
        return await uow.projects.get(id_or_name)


def _decision(event: WebhookEvent, pipelines: list[Pipeline]) -> tuple[DeliveryOutcome, str]:
    if event.kind is EventKind.PING:
        return DeliveryOutcome.PING, "ping"
    if not event.creates_build:
        return DeliveryOutcome.IGNORED, event.ignored_reason or f"{event.kind}: nothing to build"
    if event.skip_ci:
        return DeliveryOutcome.SKIPPED, f"[skip ci] in the commit message of {_ref(event)}"
    if not pipelines:
        return DeliveryOutcome.SKIPPED, "the project has no enabled pipeline"
    return DeliveryOutcome.BUILT, ""


def _overall(outcomes: list[DeliveryOutcome]) -> DeliveryOutcome:
    for outcome in (DeliveryOutcome.BUILT, DeliveryOutcome.SKIPPED, DeliveryOutcome.PING):
        if outcome in outcomes:
            return outcome
    return DeliveryOutcome.IGNORED


def _ref(event: WebhookEvent) -> str:
    if event.merge_request is not None:
        return f"!{event.merge_request.number} ({event.merge_request.source_branch})"
    return event.tag or event.branch or event.ref or event.sha


def _trigger(event: WebhookEvent, pipeline: Pipeline) -> TriggerBuild:
    if event.kind is EventKind.MERGE_REQUEST:
        assert event.merge_request is not None  # every merge request event carries one
        # the source branch may live in a fork: build the commit, named by the context
        ref = None if event.sha else event.merge_request.ref
        source = "merge_request_event"
    elif event.kind is EventKind.TAG:
        # a tag's "after" may be the annotated tag object, not its commit: name the tag
        return TriggerBuild(pipeline_id=pipeline.id, ref=event.tag, source="push", webhook=event)
    else:
        ref = event.branch
        source = "push"
    return TriggerBuild(
        pipeline_id=pipeline.id,
        ref=ref,
        sha=event.sha or None,
        source=source,
        webhook=event,
    )
