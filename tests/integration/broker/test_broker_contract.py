"""The one contract every broker adapter keeps (memory, Redis, RabbitMQ).

Delivery is best effort, but while a subscription is in effect a message published on its
topic reaches it, once, in publishing order, as a JSON-safe dict; topics do not mix; nothing
published before a subscription started is replayed; ``close()`` ends subscriptions.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from ferrous.application.ports import Broker
from tests.integration.broker.conftest import Listener

Listen = Callable[[Broker, str], Listener]


async def test_a_published_message_reaches_the_subscriber(
    broker: Broker, listen: Listen, topic: str
) -> None:
    listener = listen(broker, topic)
    await listener.ready()

    await broker.publish(topic, {"name": "JobQueued", "id": 7})

    assert await listener.next() == {"name": "JobQueued", "id": 7}
    assert await listener.nothing_more() == []


async def test_every_subscriber_receives_every_message(
    broker: Broker, listen: Listen, topic: str
) -> None:
    listeners = [listen(broker, topic) for _ in range(3)]
    for listener in listeners:
        await listener.ready()

    await broker.publish(topic, {"n": 1})
    await broker.publish(topic, {"n": 2})

    for listener in listeners:
        assert [await listener.next(), await listener.next()] == [{"n": 1}, {"n": 2}]
        assert await listener.nothing_more() == []


async def test_topics_are_isolated(broker: Broker, listen: Listen, topic: str) -> None:
    events, logs = listen(broker, f"{topic}.events"), listen(broker, f"{topic}.logs")
    await events.ready()
    await logs.ready()

    await broker.publish(f"{topic}.logs", {"for": "logs"})
    await broker.publish(f"{topic}.events", {"for": "events"})
    await broker.publish(f"{topic}.other", {"for": "nobody"})

    assert await events.next() == {"for": "events"}
    assert await logs.next() == {"for": "logs"}
    assert await events.nothing_more() == []
    assert await logs.nothing_more(0) == []


async def test_messages_arrive_in_publishing_order(
    broker: Broker, listen: Listen, topic: str
) -> None:
    first, second = listen(broker, topic), listen(broker, topic)
    await first.ready()
    await second.ready()

    for n in range(500):
        await broker.publish(topic, {"n": n})

    for listener in (first, second):
        assert [(await listener.next())["n"] for _ in range(500)] == list(range(500))


async def test_messages_are_json_safe_dicts(broker: Broker, listen: Listen, topic: str) -> None:
    message = {
        "name": "JobCompleted",
        "payload": {"job_id": "0f1e", "exit_code": 0, "duration": 1.5, "tags": ["a", "ü", "漢"]},
        "nothing": None,
        "flags": [True, False],
        "empty": {"list": [], "dict": {}},
        "big": "x" * 200_000,
    }
    listener = listen(broker, topic)
    await listener.ready()

    await broker.publish(topic, message)

    received = await listener.next()
    assert type(received) is dict
    assert received == message
    assert json.loads(json.dumps(received)) == received


@pytest.mark.parametrize("message", [{"when": datetime.now(UTC)}, {"ids": {1, 2}}, {"x": 1e999}])
async def test_a_message_that_is_not_json_is_refused(
    broker: Broker, message: dict[str, object]
) -> None:
    with pytest.raises((TypeError, ValueError)):
        await broker.publish("anything", message)


async def test_a_subscriber_does_not_get_what_was_published_before_it_started(
    broker: Broker, listen: Listen, topic: str
) -> None:
    await broker.publish(topic, {"n": "before"})
    listener = listen(broker, topic)
    await listener.ready()

    await broker.publish(topic, {"n": "after"})

    assert await listener.next() == {"n": "after"}
    assert await listener.nothing_more() == []


async def test_close_ends_subscriptions(broker: Broker, listen: Listen, topic: str) -> None:
    listeners = [listen(broker, topic), listen(broker, f"{topic}.other")]
    for listener in listeners:
        await listener.ready()

    await broker.close()

    for listener in listeners:
        async with asyncio.timeout(5):
            await listener.ended.wait()
        assert listener.task.exception() is None


async def test_publishing_after_close_does_not_raise(broker: Broker, topic: str) -> None:
    await broker.close()

    await broker.publish(topic, {"n": 1})
    await broker.close()  # closing twice is harmless


async def test_a_subscriber_that_stops_leaves_the_others_alone(
    broker: Broker, listen: Listen, topic: str
) -> None:
    leaving, staying = listen(broker, topic), listen(broker, topic)
    await leaving.ready()
    await staying.ready()

    await leaving.stop()
    await broker.publish(topic, {"n": 1})

    assert await staying.next() == {"n": 1}
