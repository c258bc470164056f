"""Broker fixtures: a fresh broker per test, on each adapter.

Tests that take ``broker`` run once per kind in ``KINDS``. Redis needs
``FERROUS_TEST_REDIS_URL`` (e.g. ``redis://127.0.0.1:6379/0``) and RabbitMQ
``FERROUS_TEST_RABBITMQ_URL`` (e.g. ``amqp://guest:guest@127.0.0.1:5672/``): without them
those cases skip; with them a server that does not answer fails them. Tests use topics (and,
on Redis, a channel prefix) of their own, so they can share a server with other test runs.

The port has no "subscribed" signal: a subscription is in effect once a message published
after it arrives. ``Listener.ready`` publishes probes until one does; ``Listener.next``
skips probes.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import aio_pika
import pytest
from redis.asyncio import Redis

from ferrous.application.ports import Broker
from ferrous.infrastructure.broker.delivery import describe, redact
from ferrous.infrastructure.broker.memory import InMemoryBroker
from ferrous.infrastructure.broker.rabbitmq import RabbitMQBroker
from ferrous.infrastructure.broker.redis import RedisBroker

KINDS = ("memory", "redis", "rabbitmq")
URL_VARIABLES = {"redis": "FERROUS_TEST_REDIS_URL", "rabbitmq": "FERROUS_TEST_RABBITMQ_URL"}
EXAMPLES = {"redis": "redis://127.0.0.1:6379/0", "rabbitmq": "amqp://guest:guest@127.0.0.1:5672/"}
PROBE = "__probe__"


def service_url(kind: str) -> str:
    """The configured URL of a real broker, or a skip that says how to configure it."""
    variable = URL_VARIABLES[kind]
    url = os.environ.get(variable)
    if not url:
        pytest.skip(f"{variable} is not set (e.g. {EXAMPLES[kind]}): {kind} cases skipped")
    return url


async def check_answering(kind: str, url: str) -> None:
    """Fail (not skip) when the configured server does not answer."""
    try:
        async with asyncio.timeout(5):
            if kind == "redis":
                client = Redis.from_url(url)
                try:
                    await client.ping()
                finally:
                    await client.aclose()
            else:
                connection = await aio_pika.connect(url)
                await connection.close()
    except Exception as exc:
        pytest.fail(
            f"{URL_VARIABLES[kind]} is set but {kind} at {redact(url)} does not answer: "
            f"{describe(exc)}"
        )


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:10]}"


def make_broker(kind: str, url: str, **options: Any) -> Broker:
    if kind == "redis":
        options.setdefault("prefix", unique("ferrous-test") + ":")
        return RedisBroker(url, **options)
    if kind == "rabbitmq":
        return RabbitMQBroker(url, **options)
    return InMemoryBroker()


class Listener:
    """Consumes one subscription in a task, into a queue the test reads."""

    def __init__(self, broker: Broker, topic: str) -> None:
        self.broker = broker
        self.topic = topic
        self.messages: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.ended = asyncio.Event()
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        try:
            async for message in self.broker.subscribe(self.topic):
                self.messages.put_nowait(message)
        finally:
            self.ended.set()

    async def ready(self, publisher: Broker | None = None, timeout: float = 10.0) -> float:
        """Publish probes (through ``publisher``, default our broker) until one arrives;
        returns how long that took. Fails after ``timeout`` seconds."""
        publisher = publisher or self.broker
        loop = asyncio.get_running_loop()
        start = loop.time()
        token = uuid.uuid4().hex
        while loop.time() - start < timeout:
            await publisher.publish(self.topic, {PROBE: token})
            try:
                async with asyncio.timeout(0.05):
                    while (await self.messages.get()).get(PROBE) != token:
                        pass
                return loop.time() - start
            except TimeoutError:
                pass
        pytest.fail(f"no probe arrived on {self.topic!r} within {timeout} s")

    async def next(self, timeout: float = 5.0) -> dict[str, Any]:
        """The next message that is not a probe."""
        async with asyncio.timeout(timeout):
            while PROBE in (message := await self.messages.get()):
                pass
            return message

    async def nothing_more(self, wait: float = 0.3) -> list[dict[str, Any]]:
        """The messages (probes aside) that arrive within ``wait`` seconds."""
        await asyncio.sleep(wait)
        extra = []
        while not self.messages.empty():
            message = self.messages.get_nowait()
            if PROBE not in message:
                extra.append(message)
        return extra

    async def stop(self) -> None:
        self.task.cancel()
        await asyncio.wait({self.task})


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def broker(kind: str) -> AsyncIterator[Broker]:
    if kind == "memory":
        broker: Broker = InMemoryBroker()
    else:
        url = service_url(kind)
        await check_answering(kind, url)
        broker = make_broker(kind, url)
    try:
        yield broker
    finally:
        await broker.close()


@pytest.fixture
async def listen() -> AsyncIterator[Callable[[Broker, str], Listener]]:
    """``listen(broker, topic)`` starts a Listener; all are stopped after the test."""
    listeners: list[Listener] = []

    def start(broker: Broker, topic: str) -> Listener:
        listener = Listener(broker, topic)
        listeners.append(listener)
        return listener

    yield start
    for listener in listeners:
        await listener.stop()


@pytest.fixture
def topic() -> str:
    return unique("topic")
