"""Choosing a broker from ``FERROUS_BROKER_URL``."""

from __future__ import annotations

import pytest

from ferrous.domain.errors import ConfigInvalid
from ferrous.infrastructure.broker.delivery import pop_query_option, redact
from ferrous.infrastructure.broker.factory import broker_from_url
from ferrous.infrastructure.broker.memory import InMemoryBroker
from ferrous.infrastructure.broker.rabbitmq import RabbitMQBroker
from ferrous.infrastructure.broker.redis import RedisBroker
from tests.integration.broker.conftest import Listener, service_url, unique


@pytest.mark.parametrize("url", ["memory://", "memory:", "MEMORY://"])
async def test_memory(url: str) -> None:
    assert isinstance(broker_from_url(url), InMemoryBroker)


@pytest.mark.parametrize(
    ("url", "prefix"),
    [
        ("redis://127.0.0.1:6379/0", "ferrous:"),
        ("rediss://user:pw@redis.example.com:6380/2", "ferrous:"),
        ("redis://127.0.0.1:6379/0?prefix=ci-a:&socket_timeout=3", "ci-a:"),
    ],
)
async def test_redis(url: str, prefix: str) -> None:
    broker = broker_from_url(url)  # does not connect

    assert isinstance(broker, RedisBroker)
    assert broker.prefix == prefix
    await broker.close()


@pytest.mark.parametrize(
    ("url", "exchange"),
    [
        ("amqp://guest:guest@127.0.0.1:5672/", "ferrous.events"),
        ("amqps://user:pw@mq.example.com/ci", "ferrous.events"),
        ("amqp://127.0.0.1/?exchange=ci-a.events&heartbeat=30", "ci-a.events"),
    ],
)
async def test_rabbitmq(url: str, exchange: str) -> None:
    broker = broker_from_url(url)  # does not connect

    assert isinstance(broker, RabbitMQBroker)
    assert broker.exchange == exchange
    await broker.close()


@pytest.mark.parametrize(
    "url", ["kafka://user:secret@kafka:9092", "", "127.0.0.1:6379", "http://localhost"]
)
def test_anything_else_is_a_config_error(url: str) -> None:
    with pytest.raises(ConfigInvalid, match="unsupported broker URL") as raised:
        broker_from_url(url)

    assert "memory://" in raised.value.message
    assert "redis://" in raised.value.message
    assert "amqp://" in raised.value.message
    assert "secret" not in raised.value.message


def test_redact_hides_only_the_password() -> None:
    assert redact("amqp://guest:guest@127.0.0.1:5672/") == "amqp://guest:***@127.0.0.1:5672/"
    assert redact("redis://:pw@host/0") == "redis://:***@host/0"
    assert redact("redis://host:6379/0") == "redis://host:6379/0"


def test_pop_query_option() -> None:
    assert pop_query_option("redis://h/0?prefix=a:&db=1", "prefix") == ("redis://h/0?db=1", "a:")
    assert pop_query_option("redis://h/0?prefix=a:", "prefix") == ("redis://h/0", "a:")
    assert pop_query_option("redis://h/0", "prefix") == ("redis://h/0", None)


async def test_a_redis_prefix_in_the_url_is_used_and_not_passed_to_redis(topic: str) -> None:
    url = service_url("redis")
    prefix = unique("ferrous-test") + ":"
    broker = broker_from_url(f"{url}?prefix={prefix}")
    try:
        listener = Listener(broker, topic)
        await listener.ready()
        await listener.stop()
        assert isinstance(broker, RedisBroker)
        assert broker.prefix == prefix
    finally:
        await broker.close()
