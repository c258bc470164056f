"""The real brokers going away: subscriptions come back by themselves, publishing never hangs.

Nothing here stops the shared servers. The server side closes our connections (Redis
``CLIENT KILL ID``, ``rabbitmqctl close_connection``, only for connections named by the
test), or a ``TcpProxy`` between broker and server plays the outage: refusing connections
(a server that is down) or swallowing traffic (a network gone silent).
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable

import aio_pika
import pytest
from redis.asyncio import Redis
from structlog.testing import capture_logs

from ferrous.application.ports import Broker
from ferrous.infrastructure.broker.rabbitmq import DEFAULT_EXCHANGE
from ferrous.infrastructure.broker.redis import RedisBroker
from tests.integration.broker.conftest import (
    Listener,
    check_answering,
    make_broker,
    service_url,
    unique,
)
from tests.integration.broker.proxy import TcpProxy

Listen = Callable[[Broker, str], Listener]
#: "Does not hang for more than a couple of seconds" (the publish timeout is 1 s).
PUBLISH_BOUND = 2.0
RESUME_BOUND = 20.0


@pytest.fixture(params=["redis", "rabbitmq"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def url(kind: str) -> str:
    url = service_url(kind)
    await check_answering(kind, url)
    return url


@pytest.fixture
async def proxy(url: str) -> AsyncIterator[TcpProxy]:
    proxy = TcpProxy.in_front_of(url)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.stop()


@pytest.fixture
async def brokers() -> AsyncIterator[list[Broker]]:
    """Brokers a test makes itself; closed after it."""
    made: list[Broker] = []
    yield made
    for broker in made:
        await broker.close()


def with_query(url: str, **options: str) -> str:
    query = "&".join(f"{key}={value}" for key, value in options.items())
    return f"{url}{'&' if '?' in url else '?'}{query}"


async def timed(call: Awaitable[None]) -> float:
    """How long ``call`` takes, in seconds."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    await call
    return loop.time() - start


async def close_connections_server_side(kind: str, url: str, name: str) -> int:
    """Close, from the server, the connections whose client name is ``name``; how many."""
    if kind == "redis":
        admin = Redis.from_url(url)
        try:
            ids = [c["id"] for c in await admin.client_list() if c.get("name") == name]
            for client_id in ids:
                await admin.client_kill_filter(_id=client_id)
            return len(ids)
        finally:
            await admin.aclose()
    if shutil.which("rabbitmqctl") is None:
        pytest.skip("rabbitmqctl is not on PATH: cannot close a connection server-side")
    listing = await rabbitmqctl("list_connections", "pid", "client_properties", "-q")
    marker = f'{{"connection_name","{name}"}}'
    pids = [line.split("\t")[0] for line in listing.splitlines() if marker in line]
    for pid in pids:
        await rabbitmqctl("close_connection", pid, "test: closing the connection")
    return len(pids)


async def rabbitmqctl(*args: str) -> str:
    process = await asyncio.create_subprocess_exec(
        "rabbitmqctl",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    if process.returncode:
        pytest.skip(f"rabbitmqctl {args[0]} failed (not this machine's RabbitMQ?): {err!r}")
    return out.decode()


async def test_a_subscription_resumes_after_the_server_closes_its_connection(
    kind: str, url: str, listen: Listen, topic: str, brokers: list[Broker]
) -> None:
    name = unique("ferrous-test")
    broker = make_broker(
        kind, with_query(url, **{"client_name" if kind == "redis" else "name": name})
    )
    brokers.append(broker)
    listener = listen(broker, topic)
    await listener.ready()

    assert await close_connections_server_side(kind, url, name) >= 1

    await listener.ready(timeout=RESUME_BOUND)  # the same subscription, reconnected
    await broker.publish(topic, {"n": "after"})
    assert await listener.next() == {"n": "after"}
    assert not listener.ended.is_set()


async def test_during_an_outage_publish_returns_at_once_and_subscriptions_come_back(
    kind: str, url: str, proxy: TcpProxy, listen: Listen, topic: str, brokers: list[Broker]
) -> None:
    broker = make_broker(kind, proxy.url_for(url))
    brokers.append(broker)
    listener = listen(broker, topic)
    await listener.ready()

    await proxy.cut()
    durations = []
    for n in range(20):  # ~1.5 s of outage: the subscription retries meanwhile
        durations.append(await timed(broker.publish(topic, {"lost": n})))
        await asyncio.sleep(0.075)
    await proxy.restore()

    assert max(durations) < PUBLISH_BOUND
    await listener.ready(timeout=RESUME_BOUND)
    await broker.publish(topic, {"n": "after"})
    assert await listener.next() == {"n": "after"}
    assert not listener.ended.is_set()


async def test_publish_gives_up_quickly_when_the_broker_stops_answering(
    kind: str, url: str, proxy: TcpProxy, listen: Listen, topic: str, brokers: list[Broker]
) -> None:
    broker = make_broker(kind, proxy.url_for(url))
    brokers.append(broker)
    listener = listen(broker, topic)
    await listener.ready()

    proxy.stall()
    first = await timed(broker.publish(topic, {"lost": 1}))
    following = [await timed(broker.publish(topic, {"lost": 2})) for _ in range(10)]
    await proxy.restore()

    assert first < PUBLISH_BOUND  # waited for its publish timeout, then dropped the message
    assert max(following) < 0.1  # dropped at once while the broker is known to be away
    await listener.ready(timeout=RESUME_BOUND)
    await broker.publish(topic, {"n": "after"})
    assert await listener.next() == {"n": "after"}


async def test_a_broker_down_at_start_is_used_once_it_comes(
    kind: str, url: str, proxy: TcpProxy, listen: Listen, topic: str, brokers: list[Broker]
) -> None:
    await proxy.cut()
    broker = make_broker(kind, proxy.url_for(url))
    brokers.append(broker)
    listener = listen(broker, topic)

    assert await timed(broker.publish(topic, {"lost": 1})) < PUBLISH_BOUND
    await asyncio.sleep(0.5)  # the subscription is retrying
    await proxy.restore()

    await listener.ready(timeout=RESUME_BOUND)
    await broker.publish(topic, {"n": "after"})
    assert await listener.next() == {"n": "after"}


async def test_a_message_that_is_not_a_json_object_is_skipped(
    kind: str, url: str, listen: Listen, topic: str, brokers: list[Broker]
) -> None:
    broker = make_broker(kind, url)
    brokers.append(broker)
    listener = listen(broker, topic)
    await listener.ready()

    for body in (b"not json", b"[1, 2]", b"\xff\xfe"):
        if isinstance(broker, RedisBroker):
            client = Redis.from_url(url)
            await client.publish(broker.prefix + topic, body)
            await client.aclose()
        else:
            connection = await aio_pika.connect(url)
            channel = await connection.channel()
            exchange = await channel.get_exchange(DEFAULT_EXCHANGE)
            await exchange.publish(aio_pika.Message(body), routing_key=topic)
            await connection.close()
    await broker.publish(topic, {"n": "valid"})

    assert await listener.next() == {"n": "valid"}
    assert not listener.ended.is_set()


async def test_subscribing_to_a_closed_broker_is_an_error(
    kind: str, url: str, brokers: list[Broker]
) -> None:
    broker = make_broker(kind, url)
    await broker.close()

    with pytest.raises(RuntimeError, match="closed"):
        await anext(aiter(broker.subscribe("anything")))


async def test_a_connection_gone_silent_is_noticed_and_replaced(
    kind: str, url: str, proxy: TcpProxy, listen: Listen, topic: str, brokers: list[Broker]
) -> None:
    if kind == "redis":  # pings an idle subscription every heartbeat
        broker: Broker = make_broker(kind, proxy.url_for(url), heartbeat=0.2)
    else:  # AMQP heartbeats
        broker = make_broker(kind, with_query(proxy.url_for(url), heartbeat="1"))
    brokers.append(broker)
    listener = listen(broker, topic)
    await listener.ready()

    with capture_logs() as logs:
        proxy.stall()
        async with asyncio.timeout(10):
            while not any(
                entry["event"] in ("broker_subscription_lost", "broker_connection_lost")
                for entry in logs
            ):
                await asyncio.sleep(0.05)
    await proxy.restore()

    await listener.ready(timeout=RESUME_BOUND)
    await broker.publish(topic, {"n": "after"})
    assert await listener.next() == {"n": "after"}
