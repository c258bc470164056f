"""Webhook and Slack deliveries through the real sender, channels and a real HTTP receiver.

The sender reads due deliveries from a real unit of work (SQLite, and the memory adapter),
sends them over HTTP to a local server and records the outcome; the clock is moved past each
backoff instead of sleeping through it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ferrous.application.dependencies import Dependencies
from ferrous.application.notification_sender import (
    MAX_ATTEMPTS,
    NotificationSender,
    seal_rule_secret,
)
from ferrous.domain.notification import (
    DeliveryStatus,
    NotificationDelivery,
    NotificationRule,
    NotifyChannel,
    NotifyOn,
)
from ferrous.domain.project import Pipeline
from ferrous.infrastructure.git.source_repository import GitSourceRepository
from ferrous.infrastructure.memory.secret_box import PlaintextSecretBox
from ferrous.infrastructure.notify.slack import SlackChannel
from ferrous.infrastructure.notify.webhook import WebhookChannel
from tests.integration.notify.receiver import receiver
from tests.integration.sql.conftest import (  # noqa: F401
    Storage,
    postgres_engine,
    postgres_template,
    sqlite_engine,
    storage,
)
from tests.integration.sql.factories import T0, job, new_build, seed_pipeline, store_build
from tests.unit.application.conftest import FakeClock

SECRET = "a-webhook-secret-of-some-length"
SERVER = "https://ci.example.com"


@pytest.fixture(params=["sqlite", "memory"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class World:
    def __init__(self, backend_storage: Storage, tmp: Path) -> None:
        self.storage = backend_storage
        self.clock = FakeClock(datetime.now(UTC) + timedelta(seconds=5))
        self.box = PlaintextSecretBox()
        self.deps = Dependencies(
            clock=self.clock,
            sources=GitSourceRepository(tmp / "trees"),
            secret_box=self.box,
            server_url=SERVER,
        )
        self.sender = NotificationSender(
            backend_storage.uow_factory,
            {NotifyChannel.WEBHOOK: WebhookChannel(), NotifyChannel.SLACK: SlackChannel()},
            self.deps,
        )

    async def rule(self, project_id: str, url: str, **fields: object) -> NotificationRule:
        rule = NotificationRule.create(
            project_id=project_id,
            name="hook",
            channel=fields.pop("channel", NotifyChannel.WEBHOOK),  # type: ignore[arg-type]
            target=url,
            on=frozenset({NotifyOn.FAILURE}),
            created_at=T0,
        )
        if fields.pop("signed", True) and rule.channel is NotifyChannel.WEBHOOK:
            rule = dataclasses.replace(rule, secret=seal_rule_secret(rule.id, SECRET, self.box))
        async with self.storage.uow_factory() as uow:
            await uow.notifications.add_rule(rule)
            await uow.commit()
        return rule

    async def fail_build(self, pipeline: Pipeline, number: int = 1) -> str:
        build = await store_build(
            self.storage.uow_factory, new_build(pipeline, number, [job("unit")])
        )
        async with self.storage.uow_factory() as uow:
            loaded = await uow.builds.get(build.id)
            job_id = loaded.jobs["unit"].id
            loaded.start_job(job_id, "agent", T0)
            loaded.complete_job(
                job_id, attempt=1, exit_code=3, failure_reason="script_failure", now=T0
            )
            await uow.builds.save(loaded)
            await uow.commit()
        return build.id

    async def log(self, rule: NotificationRule) -> list[NotificationDelivery]:
        async with self.storage.uow_factory() as uow:
            return await uow.notifications.deliveries(rule.id, 50)


@pytest.fixture
async def world(storage: Storage, tmp_path: Path) -> AsyncIterator[World]:  # noqa: F811
    w = World(storage, tmp_path)
    yield w
    await w.sender.close()


def verify(secret: str, body: bytes, header: str) -> bool:
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header)


async def test_a_failed_build_is_posted_signed_with_its_delivery_id(world: World) -> None:
    project, pipeline = await seed_pipeline(world.storage.uow_factory)
    with receiver() as r:
        rule = await world.rule(project.id, r.url + "/hook")
        build_id = await world.fail_build(pipeline)
        assert await world.sender.send_due() == 1
        assert await world.sender.send_due() == 0  # nothing twice

    [got] = r.received
    [delivery] = await world.log(rule)
    assert got.path == "/hook"
    assert got.headers["content-type"] == "application/json"
    assert got.headers["x-ferrous-event"] == "build.failed"
    assert got.headers["x-ferrous-delivery"] == delivery.id
    assert verify(SECRET, got.body, got.headers["x-ferrous-signature-256"])
    assert not verify(
        "another secret of some length", got.body, got.headers["x-ferrous-signature-256"]
    )
    body = json.loads(got.body)
    assert body["event"] == "build.failed"
    assert body["delivery_id"] == delivery.id
    assert body["build"]["id"] == build_id
    assert body["build"]["url"] == f"{SERVER}/builds/{build_id}"
    assert body["build"]["status"] == "failed"
    assert body["project"]["name"] == "demo"
    assert body["failed_jobs"] == [
        {"name": "unit", "stage": "test", "failure_reason": "script_failure", "exit_code": 3}
    ]
    assert (delivery.status, delivery.attempts, delivery.response_status) == (
        DeliveryStatus.DELIVERED,
        1,
        200,
    )
    assert delivery.delivered_at is not None


async def test_a_receiver_failing_twice_gets_one_delivery_recorded(world: World) -> None:
    project, pipeline = await seed_pipeline(world.storage.uow_factory)
    with receiver(500, 500) as r:
        rule = await world.rule(project.id, r.url)
        await world.fail_build(pipeline)
        assert await world.sender.send_due() == 1  # 500
        [pending] = await world.log(rule)
        assert (pending.status, pending.attempts, pending.response_status) == (
            DeliveryStatus.PENDING,
            1,
            500,
        )
        assert await world.sender.send_due() == 0  # not due before its backoff (1 s)
        world.clock.advance(seconds=1)
        assert await world.sender.send_due() == 1  # 500 again
        world.clock.advance(seconds=1)
        assert await world.sender.send_due() == 0  # the next wait is 2 s
        world.clock.advance(seconds=1)
        assert await world.sender.send_due() == 1  # 200
        world.clock.advance(seconds=3600)
        assert await world.sender.send_due() == 0

    ids = {got.headers["x-ferrous-delivery"] for got in r.received}
    bodies = {got.body for got in r.received}
    [delivery] = await world.log(rule)
    assert len(r.received) == 3
    assert ids == {delivery.id}  # the same delivery id every time
    assert len(bodies) == 1  # and the same body
    assert (delivery.status, delivery.attempts, delivery.response_status) == (
        DeliveryStatus.DELIVERED,
        3,
        200,
    )
    assert delivery.next_attempt_at is None


async def test_a_refusal_fails_at_once(world: World) -> None:
    project, pipeline = await seed_pipeline(world.storage.uow_factory)
    with receiver(404) as r:
        rule = await world.rule(project.id, r.url)
        await world.fail_build(pipeline)
        await world.sender.send_due()
        world.clock.advance(seconds=3600)
        assert await world.sender.send_due() == 0

    [delivery] = await world.log(rule)
    assert len(r.received) == 1
    assert (delivery.status, delivery.attempts, delivery.response_status) == (
        DeliveryStatus.FAILED,
        1,
        404,
    )
    assert delivery.last_error == "HTTP 404: nope"


async def test_a_receiver_that_never_answers_well_is_given_up(world: World) -> None:
    project, pipeline = await seed_pipeline(world.storage.uow_factory)
    with receiver(*[503] * 20) as r:
        rule = await world.rule(project.id, r.url)
        await world.fail_build(pipeline)
        for _ in range(MAX_ATTEMPTS + 2):
            await world.sender.send_due()
            world.clock.advance(seconds=3600)
    [delivery] = await world.log(rule)
    assert len(r.received) == MAX_ATTEMPTS
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.FAILED, MAX_ATTEMPTS)


async def test_no_connection_is_tried_again(world: World) -> None:
    project, pipeline = await seed_pipeline(world.storage.uow_factory)
    with receiver() as r:
        url = r.url
    rule = await world.rule(project.id, url)  # nobody listens there any more
    await world.fail_build(pipeline)
    await world.sender.send_due()
    [delivery] = await world.log(rule)
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.PENDING, 1)
    assert "Connect" in str(delivery.last_error)


async def test_slack_gets_text_and_blocks(world: World) -> None:
    project, pipeline = await seed_pipeline(world.storage.uow_factory)
    with receiver() as r:
        rule = await world.rule(
            project.id, r.url + "/services/T/B/x", channel=NotifyChannel.SLACK, signed=False
        )
        build_id = await world.fail_build(pipeline)
        await world.sender.send_due()

    [got] = r.received
    body = json.loads(got.body)
    url = f"{SERVER}/builds/{build_id}"
    assert body["text"] == f"demo / default #1 failed on main: {url}"
    assert body["blocks"][0]["type"] == "section"
    assert f"<{url}|demo / default #1 failed on main>" in body["blocks"][0]["text"]["text"]
    assert ":x:" in body["blocks"][0]["text"]["text"]
    failed = body["blocks"][-1]["text"]["text"]
    assert failed.startswith("*Failed jobs*")
    assert "`unit` (test): script_failure, exit code 3" in failed
    assert "x-ferrous-signature-256" not in got.headers
    [delivery] = await world.log(rule)
    assert delivery.status is DeliveryStatus.DELIVERED
