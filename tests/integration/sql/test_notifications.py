"""Notification rules and deliveries on every backend: deliveries queued in the commit that
finished a build (one per matching rule, previous build of the same pipeline and ref for
``recovery``), never twice for one completion, settled, listed, pruned; rules stored,
changed and removed with their deliveries."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from ferrous.application.notifications import sample_notice
from ferrous.domain.build import Build
from ferrous.domain.errors import NotFound
from ferrous.domain.events import BuildCompleted
from ferrous.domain.notification import (
    DeliveryResult,
    DeliveryStatus,
    DueNotification,
    NotificationRule,
    NotifyChannel,
    NotifyOn,
)
from ferrous.domain.project import Pipeline
from tests.integration.sql.conftest import Storage
from tests.integration.sql.factories import T0, at, job, new_build, seed_pipeline, store_build

ON_FAILURE = frozenset({NotifyOn.FAILURE, NotifyOn.RECOVERY})


def rule(project_id: str, name: str = "hook", **fields: object) -> NotificationRule:
    values: dict[str, object] = {
        "project_id": project_id,
        "name": name,
        "channel": NotifyChannel.WEBHOOK,
        "target": "http://127.0.0.1:9/hook",
        "on": ON_FAILURE,
        "created_at": T0,
    }
    values.update(fields)
    return NotificationRule.create(**values)  # type: ignore[arg-type]


def soon() -> datetime:
    return datetime.now(UTC) + timedelta(minutes=1)


async def add_rules(storage: Storage, *rules: NotificationRule) -> None:
    async with storage.uow_factory() as uow:
        for r in rules:
            await uow.notifications.add_rule(r)
        await uow.commit()


async def due(storage: Storage, now: datetime | None = None) -> list[DueNotification]:
    async with storage.uow_factory() as uow:
        return await uow.notifications.due(now or soon(), 100)


async def finish(
    storage: Storage, pipeline: Pipeline, number: int, *, ok: bool, ref: str = "main"
) -> Build:
    build = await store_build(
        storage.uow_factory, new_build(pipeline, number, [job("unit", stage="test")], ref=ref)
    )
    async with storage.uow_factory() as uow:
        loaded = await uow.builds.get(build.id)
        job_id = loaded.jobs["unit"].id
        loaded.start_job(job_id, "agent", at(number * 10 + 1))
        loaded.complete_job(
            job_id,
            attempt=1,
            exit_code=0 if ok else 2,
            failure_reason=None if ok else "script_failure",
            now=at(number * 10 + 5),
        )
        await uow.builds.save(loaded)
        await uow.commit()
    return loaded


async def test_a_failed_build_queues_one_delivery_per_matching_rule(storage: Storage) -> None:
    project, pipeline = await seed_pipeline(storage.uow_factory)
    other, _ = await seed_pipeline(storage.uow_factory, "other")
    hook = rule(project.id)
    await add_rules(
        storage,
        hook,
        rule(project.id, "successes", on=frozenset({NotifyOn.SUCCESS})),
        rule(project.id, "off", enabled=False),
        rule(project.id, "releases", branches=("release/*",)),
        rule(other.id, "elsewhere"),
    )
    build = await finish(storage, pipeline, 1, ok=False)

    [delivery] = await due(storage)

    assert delivery.rule_id == hook.id
    assert delivery.channel is NotifyChannel.WEBHOOK
    assert delivery.event == "build.failed"
    assert delivery.attempts == 0
    notice = delivery.notice
    assert (notice.build_id, notice.build_number, notice.status) == (build.id, 1, "failed")
    assert (notice.project_name, notice.pipeline_name, notice.ref) == ("demo", "default", "main")
    assert notice.previous_status is None
    assert [(j.name, j.failure_reason, j.exit_code) for j in notice.failed_jobs] == [
        ("unit", "script_failure", 2)
    ]
    assert notice.duration_seconds == 4.0
    assert await due(storage, now=T0) == []  # due from the commit on


async def test_recovery_needs_the_previous_build_of_the_same_ref_to_have_failed(
    storage: Storage,
) -> None:
    project, pipeline = await seed_pipeline(storage.uow_factory)
    await add_rules(storage, rule(project.id, on=frozenset({NotifyOn.RECOVERY})))

    await finish(storage, pipeline, 1, ok=True)  # nothing before it
    await finish(storage, pipeline, 2, ok=False)  # a failure: not wanted
    await finish(storage, pipeline, 3, ok=True, ref="topic")  # another ref's first build
    await finish(storage, pipeline, 4, ok=True)  # main recovers
    await finish(storage, pipeline, 5, ok=True)  # still fine

    [delivery] = await due(storage)
    assert (delivery.notice.build_number, delivery.event) == (4, "build.recovered")
    assert delivery.notice.previous_status == "failed"


async def test_a_repeated_completion_queues_nothing_twice(storage: Storage) -> None:
    project, pipeline = await seed_pipeline(storage.uow_factory)
    await add_rules(storage, rule(project.id))
    build = await finish(storage, pipeline, 1, ok=False)
    async with storage.uow_factory() as uow:  # the same completion's event, committed again
        loaded = await uow.builds.get(build.id)
        assert loaded.version == build.version
        loaded.events.append(BuildCompleted(build_id=build.id, status="failed"))
        await uow.commit()
    assert len(await due(storage)) == 1


async def test_settled_deliveries_leave_the_queue_and_show_in_the_log(storage: Storage) -> None:
    project, pipeline = await seed_pipeline(storage.uow_factory)
    hook = rule(project.id)
    await add_rules(storage, hook)
    await finish(storage, pipeline, 1, ok=False)
    await finish(storage, pipeline, 2, ok=False)
    first, second = await due(storage)
    now = datetime.now(UTC)
    async with storage.uow_factory() as uow:
        await uow.notifications.settle(
            [
                DeliveryResult(
                    delivery_id=first.delivery_id,
                    attempts=1,
                    at=now,
                    status=DeliveryStatus.DELIVERED,
                    response_status=200,
                ),
                DeliveryResult(
                    delivery_id=second.delivery_id,
                    attempts=1,
                    at=now,
                    status=DeliveryStatus.PENDING,
                    next_attempt_at=now + timedelta(hours=1),
                    response_status=503,
                    error="HTTP 503",
                ),
            ]
        )
        await uow.commit()

    assert await due(storage) == []
    [retried] = await due(storage, now=now + timedelta(hours=2))
    assert (retried.delivery_id, retried.attempts) == (second.delivery_id, 1)
    async with storage.uow_factory() as uow:
        log = await uow.notifications.deliveries(hook.id, 10)
        older = await uow.notifications.deliveries(hook.id, 10, before=log[0].id)
    assert [d.id for d in log] == [second.delivery_id, first.delivery_id]  # newest first
    assert (log[1].status, log[1].response_status, log[1].delivered_at) == (
        DeliveryStatus.DELIVERED,
        200,
        now,
    )
    assert (log[0].status, log[0].last_error, log[0].delivered_at) == (
        DeliveryStatus.PENDING,
        "HTTP 503",
        None,
    )
    assert [d.id for d in older] == [first.delivery_id]

    async with storage.uow_factory() as uow:
        assert await uow.notifications.prune(now + timedelta(days=1)) == 1  # the settled one
        await uow.commit()
    async with storage.uow_factory() as uow:
        assert [d.id for d in await uow.notifications.deliveries(hook.id, 10)] == [
            second.delivery_id
        ]


async def test_rules_are_stored_changed_and_removed_with_their_deliveries(
    storage: Storage,
) -> None:
    project, _ = await seed_pipeline(storage.uow_factory)
    other, _ = await seed_pipeline(storage.uow_factory, "other")
    hook = rule(project.id, branches=("main", "release/*"), secret="sealed:abc")
    mail = rule(
        project.id,
        "mail",
        channel=NotifyChannel.EMAIL,
        target="a@example.com, b@x.org",
        created_at=at(1),
    )
    await add_rules(storage, hook, mail)
    async with storage.uow_factory() as uow:
        assert await uow.notifications.list_rules(project.id) == [hook, mail]
        assert await uow.notifications.get_rule(project.id, hook.id) == hook
        with pytest.raises(NotFound):
            await uow.notifications.get_rule(other.id, hook.id)
        changed = dataclasses.replace(hook, enabled=False, on=frozenset({NotifyOn.ALWAYS}))
        await uow.notifications.save_rule(changed)
        test = await uow.notifications.queue_test(mail, sample_notice(project.id, "demo"), T0)
        await uow.commit()
    async with storage.uow_factory() as uow:
        assert await uow.notifications.get_rule(project.id, hook.id) == changed
        [queued] = await uow.notifications.due(soon(), 10)
        assert (queued.delivery_id, queued.event, queued.target) == (
            test.id,
            "ping",
            "a@example.com, b@x.org",
        )
        await uow.notifications.remove_rule(project.id, mail.id)
        with pytest.raises(NotFound):
            await uow.notifications.remove_rule(other.id, hook.id)
        await uow.commit()
    async with storage.uow_factory() as uow:
        assert await uow.notifications.list_rules(project.id) == [changed]
        assert await uow.notifications.due(soon(), 10) == []
