"""The outbox relay through a broker outage: no event committed meanwhile is lost.

The relay publishes with ``required=True``: while the broker is away that raises instead of
dropping, so ``relay_outbox`` marks nothing and the events stay in the (real, SQLite)
outbox until the broker is back; then every event arrives once, in commit order. The
outage is a ``TcpProxy`` between the publishing broker and the server that refuses
connections; the subscriber connects directly (another server whose link stayed up).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from structlog.testing import capture_logs

from ferrous.application import background
from ferrous.application.background import run_outbox_relay
from ferrous.application.ports import Broker
from ferrous.application.signals import Flag
from ferrous.domain.errors import BrokerUnavailable
from ferrous.domain.events import ProjectCreated
from ferrous.infrastructure.broker.memory import InMemoryBroker
from ferrous.infrastructure.sql import (
    OutboxMessage,
    create_engine,
    fetch_unpublished,
    migrate,
    relay_outbox,
    write_transaction,
)
from ferrous.infrastructure.sql.outbox import INSERT_EVENTS, event_rows
from tests.integration.broker.conftest import (
    Listener,
    check_answering,
    make_broker,
    service_url,
    unique,
)
from tests.integration.broker.proxy import TcpProxy

Listen = Callable[[Broker, str], Listener]
RECOVERY_BOUND = 20.0  # seconds for the relay to get through once the broker is back


@pytest.fixture(params=["redis", "rabbitmq"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def url(kind: str) -> str:
    url = service_url(kind)  # skips, with the reason, when the variable is unset
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
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite:///{tmp_path / 'ferrous.db'}")
    try:
        await migrate(engine)
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
async def brokers() -> AsyncIterator[list[Broker]]:
    made: list[Broker] = []
    yield made
    for broker in made:
        await broker.close()


async def commit_events(engine: AsyncEngine, names: list[str]) -> None:
    events = [ProjectCreated(project_id=uuid.uuid4().hex, name=name) for name in names]
    async with write_transaction(engine) as conn:
        await conn.execute(INSERT_EVENTS, event_rows(events, datetime.now(UTC)))


async def unpublished(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        return [m.payload["name"] for m in await fetch_unpublished(conn, 1000)]


async def test_events_committed_during_an_outage_are_published_after_it(
    kind: str,
    url: str,
    proxy: TcpProxy,
    engine: AsyncEngine,
    brokers: list[Broker],
    listen: Listen,
    topic: str,
) -> None:
    options: dict[str, Any] = {"prefix": unique("ferrous-test") + ":"} if kind == "redis" else {}
    publisher = make_broker(kind, proxy.url_for(url), publish_timeout=0.5, **options)
    subscriber = make_broker(kind, url, **options)
    brokers += [publisher, subscriber]
    listener = listen(subscriber, topic)
    await listener.ready(publisher)

    async def publish(message: OutboxMessage) -> None:
        await publisher.publish(topic, message.as_message(), required=True)

    await commit_events(engine, ["before-1", "before-2"])
    assert await relay_outbox(engine, publish) == 2

    await proxy.cut()
    await commit_events(engine, ["during-1", "during-2", "during-3"])
    for _ in range(3):
        with pytest.raises(BrokerUnavailable):
            await relay_outbox(engine, publish)
        assert await unpublished(engine) == ["during-1", "during-2", "during-3"]
        await asyncio.sleep(0.2)

    await proxy.restore()
    await commit_events(engine, ["after-1"])
    loop = asyncio.get_running_loop()
    deadline = loop.time() + RECOVERY_BOUND
    while await unpublished(engine):
        assert loop.time() < deadline, "the relay did not get through after the outage"
        try:
            await relay_outbox(engine, publish)
        except BrokerUnavailable:
            await asyncio.sleep(0.2)

    expected = ["before-1", "before-2", "during-1", "during-2", "during-3", "after-1"]
    received = [(await listener.next(timeout=10.0))["payload"]["name"] for _ in expected]
    assert received == expected
    assert await listener.nothing_more() == []


async def test_the_relay_marks_only_what_went_out_in_order(engine: AsyncEngine) -> None:
    await commit_events(engine, ["a", "b", "c", "d"])
    sent: list[str] = []
    refuse = {"c"}

    async def publish(message: OutboxMessage) -> None:
        if message.payload["name"] in refuse:
            raise BrokerUnavailable()
        sent.append(message.payload["name"])

    with pytest.raises(BrokerUnavailable):
        await relay_outbox(engine, publish)
    assert sent == ["a", "b"]
    assert await unpublished(engine) == ["c", "d"]
    refuse.clear()
    assert await relay_outbox(engine, publish) == 2
    assert sent == ["a", "b", "c", "d"]
    assert await unpublished(engine) == []


async def test_a_required_publish_on_a_closed_broker_raises() -> None:
    broker = InMemoryBroker()
    await broker.close()
    await broker.publish("events", {"id": 1})  # dropped, as before
    with pytest.raises(BrokerUnavailable):
        await broker.publish("events", {"id": 1}, required=True)


async def test_the_relay_loop_logs_an_outage_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(background, "ERROR_PAUSE", 0.01)
    passes = 0

    async def relay_batch(limit: int) -> int:
        nonlocal passes
        passes += 1
        if passes <= 5:
            raise BrokerUnavailable("redis is unavailable: ConnectionError")
        return 0

    with capture_logs() as logs:
        task = asyncio.create_task(run_outbox_relay(relay_batch, Flag()))
        try:
            async with asyncio.timeout(5):
                while passes < 6:
                    await asyncio.sleep(0.01)
        finally:
            task.cancel()
            await asyncio.wait({task})
    events = [entry["event"] for entry in logs if entry["log_level"] in ("warning", "error")]
    assert events == ["outbox_relay_failed"]
    assert next(e for e in logs if e["event"] == "outbox_relay_recovered")["failed_passes"] == 5
