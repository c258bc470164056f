"""The notification sender with the email channel: builds on the in-memory adapters, mail to a
real SMTP server (aiosmtpd) on 127.0.0.1.

The unit of work stamps queued deliveries with the wall clock, so the test clock starts a
minute from now: what is queued is due at once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ferrous.application import commands as c
from ferrous.application.dependencies import Dependencies
from ferrous.application.messagebus import MessageBus
from ferrous.application.notification_ports import NotificationChannel
from ferrous.application.notification_sender import NotificationSender
from ferrous.domain.notification import DeliveryStatus, NotificationDelivery, NotifyChannel
from ferrous.infrastructure.git.source_repository import GitSourceRepository
from ferrous.infrastructure.memory import InMemoryStore, PlaintextSecretBox, memory_uow_factory
from ferrous.infrastructure.memory.notifications import tables
from ferrous.infrastructure.notify.email import (
    SmtpConfig,
    SmtpEmailChannel,
    UnconfiguredEmailChannel,
)
from tests.smtp import SmtpServer
from tests.unit.application.conftest import SERVER_URL, FakeClock, GitRepo, World

FAILING = """
stages: [test]
unit:
  stage: test
  script: [exit 1]
"""


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


@pytest.fixture
def world(tmp_path: Path) -> World:
    store = InMemoryStore()
    clock = FakeClock(datetime.now(UTC) + timedelta(minutes=1))
    deps = Dependencies(
        clock=clock,
        sources=GitSourceRepository(tmp_path / "trees"),
        secret_box=PlaintextSecretBox(),
        server_url=SERVER_URL,
    )
    bus = MessageBus(memory_uow_factory(store), deps)
    return World(store, bus, clock, GitRepo(tmp_path / "repo"))


def sender_for(world: World, email: NotificationChannel) -> NotificationSender:
    return NotificationSender(
        memory_uow_factory(world.store), {NotifyChannel.EMAIL: email}, world.bus.deps
    )


@pytest.fixture
async def sender(world: World, smtp: SmtpServer) -> AsyncIterator[NotificationSender]:
    config = SmtpConfig(host="127.0.0.1", port=smtp.port, starttls=False, timeout=5.0)
    sending = sender_for(world, SmtpEmailChannel(config))
    yield sending
    await sending.close()


async def failed_build(world: World, target: str = "dev@example.com") -> str:
    pipeline_id = await world.project(FAILING)
    project_id = world.store.pipelines[pipeline_id].project_id
    await world.bus.handle(
        c.CreateNotificationRule(
            project_id=project_id,
            name="mail the team",
            channel="email",
            target=target,
            on=frozenset({"failure"}),
        )
    )
    build = await world.trigger(pipeline_id)
    await world.run(await world.agent(), exit_code=1)
    assert world.build(build.id).status == "failed"
    return build.id


def deliveries(world: World) -> list[NotificationDelivery]:
    return [stored.view for stored in tables(world.store).deliveries.values()]


async def test_a_failed_build_is_mailed_once(
    world: World, smtp: SmtpServer, sender: NotificationSender
) -> None:
    build_id = await failed_build(world)
    assert await sender.send_due() == 1
    assert await sender.send_due() == 0
    (received,) = smtp.wait_for(1)
    [delivery] = deliveries(world)
    assert delivery.status is DeliveryStatus.DELIVERED
    assert delivery.response_status == 250
    message = received.message
    assert received.rcpt_tos == ["dev@example.com"]
    assert message["Subject"] == f"[demo] Build #{world.build(build_id).number} failed on main"
    assert message["Message-ID"] == f"<{delivery.id}@ferrous>"
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    text = body.get_content()
    assert f"{SERVER_URL}/builds/{build_id}" in text
    assert "unit (stage test)" in text


async def test_a_451_is_sent_again_later(world: World, smtp: SmtpServer) -> None:
    smtp.handler.answer = "451 4.3.0 greylisted, come back later"
    config = SmtpConfig(host="127.0.0.1", port=smtp.port, starttls=False, timeout=5.0)
    sender = sender_for(world, SmtpEmailChannel(config))
    await failed_build(world)
    assert await sender.send_due() == 1
    [delivery] = deliveries(world)
    assert delivery.status is DeliveryStatus.PENDING
    assert delivery.last_error == "451 4.3.0 greylisted, come back later"
    assert smtp.messages == []

    smtp.handler.answer = None
    world.clock.advance(seconds=2)
    assert await sender.send_due() == 1
    [delivery] = deliveries(world)
    assert delivery.status is DeliveryStatus.DELIVERED
    assert delivery.attempts == 2
    assert len(smtp.wait_for(1)) == 1


async def test_a_550_fails_the_delivery(world: World, smtp: SmtpServer) -> None:
    smtp.handler.refused = {"nobody@example.com": "550 5.1.1 no such user"}
    config = SmtpConfig(host="127.0.0.1", port=smtp.port, starttls=False, timeout=5.0)
    sender = sender_for(world, SmtpEmailChannel(config))
    await failed_build(world, target="nobody@example.com")
    assert await sender.send_due() == 1
    [delivery] = deliveries(world)
    assert delivery.status is DeliveryStatus.FAILED
    assert delivery.last_error == "nobody@example.com: 550 5.1.1 no such user"
    assert delivery.response_status == 550


async def test_email_without_a_relay_fails_the_delivery(world: World) -> None:
    await failed_build(world)
    assert await sender_for(world, UnconfiguredEmailChannel()).send_due() == 1
    [delivery] = deliveries(world)
    assert delivery.status is DeliveryStatus.FAILED
    assert delivery.last_error is not None
    assert "email is not configured on this server" in delivery.last_error
