"""A broker subscription says when it is back after a gap (``on_resume``).

Messages published while a subscription is away are lost, and a broker that comes back may
carry the missed work (the outbox relay publishes what it kept at once) before every
subscriber has subscribed again. So once the broker has confirmed the subscription again, the
adapter calls ``on_resume()``, and every message published after that call is delivered.

Against private Redis / RabbitMQ processes (``broker_processes``: the shared brokers are never
touched) that are killed and started again, started late, or (Redis) close the subscriber's
connection themselves, which redis-py repairs by itself. Needs ``FERROUS_TEST_REDIS_URL`` /
``FERROUS_TEST_RABBITMQ_URL``, the sign that these brokers are installed here.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from ferrous.application.ports import Broker
from ferrous.application.signals import JobSignals
from ferrous.domain.errors import BrokerUnavailable
from ferrous.infrastructure.broker.memory import InMemoryBroker
from ferrous.infrastructure.broker.rabbitmq import RabbitMQBroker
from ferrous.infrastructure.broker.redis import RedisBroker
from tests.e2e.broker_processes import BROKERS, BrokerProcess

pytestmark = pytest.mark.e2e

URL_VARIABLES = {"redis": "FERROUS_TEST_REDIS_URL", "rabbitmq": "FERROUS_TEST_RABBITMQ_URL"}
RESUME_TIMEOUT = 20.0


@pytest.fixture(params=sorted(BROKERS))
def broker_process(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BrokerProcess]:
    kind = str(request.param)
    if not os.environ.get(URL_VARIABLES[kind]):
        pytest.skip(f"{URL_VARIABLES[kind]} is not set: {kind} cases skipped")
    missing = BROKERS[kind].available()
    if missing:
        pytest.skip(f"cannot start a private {kind}: {missing}")
    process = BROKERS[kind](tmp_path / kind).start()
    try:
        yield process
    finally:
        process.kill()


def adapters(process: BrokerProcess) -> tuple[Broker, Broker]:
    """Two brokers on ``process`` (with their own connections): to subscribe, to publish."""
    if process.kind == "redis":
        prefix = f"resume-{uuid.uuid4().hex[:8]}:"
        return RedisBroker(process.url, prefix=prefix), RedisBroker(process.url, prefix=prefix)
    return RabbitMQBroker(process.url), RabbitMQBroker(process.url)


class Subscriber:
    """One subscription, consumed in a task; counts ``on_resume`` calls."""

    def __init__(self, broker: Broker, topic: str) -> None:
        self.topic = topic
        self.messages: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.resumes = 0
        self.resumed = asyncio.Event()
        self.task = asyncio.create_task(self._consume(broker))

    def _on_resume(self) -> None:
        self.resumes += 1
        self.resumed.set()

    async def _consume(self, broker: Broker) -> None:
        async for message in broker.subscribe(self.topic, on_resume=self._on_resume):
            self.messages.put_nowait(message)

    async def ready(self, publisher: Broker) -> None:
        """Probe until a message gets through (the subscription is in effect), then drain."""
        async with asyncio.timeout(RESUME_TIMEOUT):
            while True:
                await publisher.publish(self.topic, {"probe": True})
                try:
                    async with asyncio.timeout(0.1):
                        await self.messages.get()
                        break
                except TimeoutError:
                    pass
        await asyncio.sleep(0.2)
        while not self.messages.empty():
            self.messages.get_nowait()

    async def wait_resumed(self) -> None:
        async with asyncio.timeout(RESUME_TIMEOUT):
            await self.resumed.wait()

    async def stop(self) -> None:
        self.task.cancel()
        await asyncio.wait({self.task})


async def publish_once(broker: Broker, topic: str, message: dict[str, Any]) -> None:
    """Publish until the broker takes it (``required``: not dropped), exactly once."""
    async with asyncio.timeout(RESUME_TIMEOUT):
        while True:
            try:
                await broker.publish(topic, message, required=True)
                return
            except BrokerUnavailable:
                await asyncio.sleep(0.2)


async def assert_delivered_after_resume(subscriber: Subscriber, publisher: Broker) -> None:
    """A message published once after ``on_resume`` arrives, without any retry."""
    await subscriber.wait_resumed()
    await publish_once(publisher, subscriber.topic, {"n": "after"})
    async with asyncio.timeout(5.0):
        assert await subscriber.messages.get() == {"n": "after"}


async def test_on_resume_after_the_broker_restarts(broker_process: BrokerProcess) -> None:
    subscribing, publishing = adapters(broker_process)
    subscriber = Subscriber(subscribing, f"topic-{uuid.uuid4().hex[:8]}")
    try:
        await subscriber.ready(publishing)
        assert subscriber.resumes == 0  # the first subscription is no resumption

        broker_process.kill()
        await asyncio.sleep(1.0)  # the subscription notices and retries
        assert subscriber.resumes == 0
        await asyncio.to_thread(broker_process.start)

        await assert_delivered_after_resume(subscriber, publishing)
        assert subscriber.resumes >= 1
    finally:
        await subscriber.stop()
        await subscribing.close()
        await publishing.close()


async def test_on_resume_when_the_broker_comes_only_after_subscribing(
    broker_process: BrokerProcess,
) -> None:
    broker_process.kill()
    subscribing, publishing = adapters(broker_process)
    subscriber = Subscriber(subscribing, f"topic-{uuid.uuid4().hex[:8]}")
    try:
        await asyncio.sleep(0.5)  # the subscription fails and retries
        await asyncio.to_thread(broker_process.start)
        await assert_delivered_after_resume(subscriber, publishing)
    finally:
        await subscriber.stop()
        await subscribing.close()
        await publishing.close()


@pytest.mark.parametrize("broker_process", ["redis"], indirect=True)
async def test_on_resume_after_redis_closed_the_connection(
    broker_process: BrokerProcess,
) -> None:
    """Redis closes the subscriber's connection (``CLIENT KILL``) and stays up: redis-py may
    reconnect and resubscribe by itself, inside a read; that is a resumption too."""
    subscribing, publishing = adapters(broker_process)
    subscriber = Subscriber(subscribing, f"topic-{uuid.uuid4().hex[:8]}")
    try:
        await subscriber.ready(publishing)
        admin = Redis.from_url(broker_process.url)
        try:  # this Redis is ours alone: every pub/sub connection is the subscriber's
            assert await admin.client_kill_filter(_type="pubsub") >= 1
        finally:
            await admin.aclose()
        await assert_delivered_after_resume(subscriber, publishing)
        assert subscriber.resumes == 1
    finally:
        await subscriber.stop()
        await subscribing.close()
        await publishing.close()


async def test_the_in_memory_broker_takes_on_resume_and_never_needs_it() -> None:
    broker = InMemoryBroker()
    subscriber = Subscriber(broker, "topic")
    try:
        await subscriber.ready(broker)
        await broker.publish("topic", {"n": 1})
        assert await subscriber.messages.get() == {"n": 1}
        assert subscriber.resumes == 0
    finally:
        await subscriber.stop()
        await broker.close()


async def test_wake_all_wakes_claims_and_every_live_log() -> None:
    """What a server does when a subscription resumes: every waiter looks again."""
    signals = JobSignals()
    first, second = signals.watch_log("job-1"), signals.watch_log("job-2")
    claim = asyncio.create_task(signals.wait_for_jobs(5.0))
    await asyncio.sleep(0)
    started = asyncio.get_running_loop().time()
    signals.wake_all()
    await claim
    assert await first.wait(5.0)
    assert await second.wait(5.0)
    assert asyncio.get_running_loop().time() - started < 1.0
    first.close()
    second.close()
