"""The Redis broker: Redis pub/sub, for several server processes sharing one Redis.

Messages are JSON objects published on the channel ``<prefix><topic>`` (prefix ``ferrous:``
by default; set it with ``prefix=`` or the URL's ``?prefix=``). Pub/sub channels ignore the
database number of the URL, so the prefix is what keeps several installations sharing a Redis
apart.

Connections: publishing uses the client's pool (one connection unless publishes overlap);
each subscription holds its own connection, read by its own task into a bounded inbox. Our
servers open a handful of long-lived subscriptions (events, logs), so a connection each is
cheap, and it keeps one slow or broken subscriber from delaying the others (a shared
connection would need its own fan-out with the same inboxes anyway).

Delivery is best effort (the database stays the source of truth):

- Publishing never waits more than ``publish_timeout`` and never raises for a broker
  problem: the message is logged and dropped (``broker_publish_failed`` once per outage,
  ``broker_publish_recovered`` with the count dropped). After a failure, publishes are
  dropped at once for a pause that grows from 0.5 s to 5 s, so a dead broker costs request
  handlers nothing. A message that is not JSON raises ``TypeError`` or ``ValueError``: that
  is a bug in the caller, not an outage.
- ``publish(..., required=True)`` (the outbox relay) raises ``BrokerUnavailable`` instead of
  dropping, within the same bounds (at once during the pause), so the relay keeps the event
  and publishes it again once the broker is back.
- A subscription reconnects by itself, with exponential backoff (0.1 s up to 5 s, with
  jitter), and resubscribes. Messages published while it was disconnected are lost, so
  once Redis confirms the subscription again, ``subscribe(topic, on_resume=...)`` calls
  ``on_resume()``: the subscriber looks in the database for what it may have missed rather
  than wait for a timeout (a broker that comes back may well carry the missed work before
  every subscriber is back: the outbox relay publishes what it kept at once). That holds
  when redis-py reconnected the subscription by itself too, and when it could be set up
  only after failures. A connection that stops answering (no message and no reply to a
  ping for three ``heartbeat`` periods) is treated as lost.
- A subscriber that falls 1,000 messages behind loses the oldest ones.
- ``close()`` ends every open subscription and releases all connections; subscribing
  afterwards raises ``RuntimeError``, publishing afterwards drops the message.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import suppress
from typing import Any

import structlog
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from ferrous.domain.errors import BrokerUnavailable
from ferrous.infrastructure.broker.delivery import (
    Inbox,
    OnResume,
    PublishOutage,
    Subscriptions,
    decode,
    encode,
    pause_after_loss,
    pop_query_option,
)

log = structlog.get_logger(__name__)

DEFAULT_PREFIX = "ferrous:"


class RedisBroker:
    def __init__(
        self,
        url: str,
        *,
        prefix: str | None = None,
        publish_timeout: float = 1.0,
        heartbeat: float = 10.0,
    ) -> None:
        """``url`` is a ``redis://`` or ``rediss://`` URL; nothing connects until first use.

        ``prefix`` (default: the URL's ``?prefix=``, else ``ferrous:``) namespaces the
        channels. Other URL query options are redis-py's (``socket_timeout``,
        ``client_name``, ...).
        """
        url, url_prefix = pop_query_option(url, "prefix")
        self.prefix = prefix if prefix is not None else (url_prefix or DEFAULT_PREFIX)
        self._publish_timeout = publish_timeout
        self._heartbeat = heartbeat
        # Options in the URL win over these defaults. One retry lets a pooled connection that
        # the server closed reconnect transparently; longer outages are handled here.
        self._client: Redis = Redis.from_url(
            url,
            socket_connect_timeout=publish_timeout,
            socket_timeout=5.0,
            socket_keepalive=True,
            retry=Retry(NoBackoff(), 1),
        )
        self._outage = PublishOutage("redis")
        self._subscriptions = Subscriptions("redis")
        self._closed = False

    async def publish(self, topic: str, message: dict[str, Any], *, required: bool = False) -> None:
        data = encode(message)
        if self._closed:
            if required:
                raise BrokerUnavailable("the broker is closed")
            log.debug("broker_publish_after_close", broker="redis", topic=topic)
            return

        async def send() -> None:
            await self._client.publish(self.prefix + topic, data)

        await self._outage.attempt(send, timeout=self._publish_timeout, required=required)

    async def subscribe(
        self, topic: str, *, on_resume: OnResume | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        if self._closed:
            raise RuntimeError("the broker is closed")
        async for message in self._subscriptions.run(topic, self._pump, on_resume):
            yield message

    async def ping(self) -> None:
        """Redis answers PING (raises the client's error when it does not)."""
        await self._client.ping()

    async def close(self) -> None:
        self._closed = True
        await self._subscriptions.close()
        with suppress(Exception):
            async with asyncio.timeout(5.0):
                await self._client.aclose()

    async def _pump(self, topic: str, inbox: Inbox) -> None:
        """Keep one subscription alive, reconnecting with backoff, until cancelled."""
        failures = 0
        confirmed = False  # Redis confirmed the subscription once already

        def subscribed() -> None:
            """Redis confirmed the subscription: the first time, or again after a gap."""
            nonlocal failures, confirmed
            if failures or confirmed:
                log.info("broker_subscription_resumed", broker="redis", topic=topic)
                inbox.resumed()
            failures, confirmed = 0, True

        while True:
            pubsub = self._client.pubsub()
            try:
                await pubsub.subscribe(self.prefix + topic)
                await self._read(pubsub, inbox, subscribed)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a subscriber must never crash the server
                failures += 1
                await pause_after_loss("redis", topic, exc, failures)
            finally:
                with suppress(Exception):
                    async with asyncio.timeout(1.0):
                        await pubsub.aclose()  # type: ignore[no-untyped-call]  # unannotated in redis-py

    async def _read(self, pubsub: PubSub, inbox: Inbox, subscribed: Callable[[], None]) -> None:
        """Deliver the messages; ``subscribed()`` on each confirmation of the subscription
        (redis-py resubscribes by itself when it reconnects within a read)."""
        unanswered = 0
        while True:
            raw = await pubsub.get_message(timeout=self._heartbeat)
            if raw is None:
                if unanswered == 2:
                    raise RedisConnectionError("no answer from Redis to two pings")
                unanswered += 1
                await pubsub.ping()
                continue
            unanswered = 0
            if raw["type"] == "subscribe":
                subscribed()
            elif raw["type"] == "message":
                message = decode(raw["data"], "redis", inbox.topic)
                if message is not None:
                    inbox.put(message)
