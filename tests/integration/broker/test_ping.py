"""``Broker.ping`` (the readiness probe's broker check) against real Redis and RabbitMQ,
with a ``TcpProxy`` in between that takes the broker away and gives it back: answers when
the broker does, "unreachable" within the readiness timeout when it does not (refused or
silent), and answers again once it is back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from ferrous.application.readiness import ReadinessCheck
from ferrous.infrastructure.broker.memory import InMemoryBroker
from tests.integration.broker.conftest import check_answering, make_broker, service_url
from tests.integration.broker.proxy import TcpProxy

TIMEOUT = 2.0


@pytest.fixture(params=["redis", "rabbitmq"])
async def proxy_and_url(request: pytest.FixtureRequest) -> AsyncIterator[tuple[TcpProxy, str]]:
    kind = str(request.param)
    url = service_url(kind)
    await check_answering(kind, url)
    proxy = TcpProxy.in_front_of(url)
    await proxy.start()
    try:
        yield proxy, url
    finally:
        await proxy.stop()


async def state(check: ReadinessCheck) -> str:
    return (await check.check()).checks["broker"]


async def eventually_ok(check: ReadinessCheck, within: float = 15.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    last = await state(check)
    while last != "ok" and loop.time() < deadline:
        await asyncio.sleep(0.2)
        last = await state(check)
    assert last == "ok"


async def test_the_memory_broker_always_answers() -> None:
    broker = InMemoryBroker()
    await broker.ping()
    await broker.close()


async def test_ping_follows_the_broker(
    proxy_and_url: tuple[TcpProxy, str],
) -> None:
    proxy, url = proxy_and_url
    kind = "redis" if url.startswith("redis") else "rabbitmq"
    broker = make_broker(kind, proxy.url_for(url))
    check = ReadinessCheck({"broker": broker.ping}, timeout=TIMEOUT, max_age=0)
    loop = asyncio.get_running_loop()
    try:
        assert await state(check) == "ok"

        await proxy.cut()  # the broker stopped
        started = loop.time()
        await asyncio.sleep(0.1)  # RabbitMQ's client notices the closed connection
        refused = await state(check)
        assert refused.startswith("unreachable: "), refused
        assert loop.time() - started < TIMEOUT + 1.0

        await proxy.restore()
        await eventually_ok(check)

        proxy.stall()  # connected, but nothing answers
        started = loop.time()
        silent = await state(check)
        if kind == "redis":  # a PING must be answered; RabbitMQ's open connection still counts
            assert silent.startswith("unreachable: "), silent
        assert loop.time() - started < TIMEOUT + 1.0
        await proxy.restore()
        await eventually_ok(check)
    finally:
        await check.aclose()
        await broker.close()
