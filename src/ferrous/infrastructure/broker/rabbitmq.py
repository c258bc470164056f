"""The RabbitMQ broker: a durable topic exchange, one exclusive queue per subscription.

Messages are JSON objects (``application/json``, not persistent) published on the topic
exchange ``ferrous.events`` (set another with ``exchange=`` or the URL's ``?exchange=``;
a separate virtual host also separates installations) with the topic as routing key. Each
subscription declares its own exclusive, auto-delete queue bound to its topic, so every
subscriber gets every message and the queue disappears with its consumer. Topics are
matched exactly: ``*`` and ``#`` (AMQP wildcards) are refused in ``subscribe``.

One robust connection (``aio_pika.connect_robust``) is opened on first use and shared: a
channel with publisher confirms for publishing, and a channel per subscription. When the
connection drops, aio-pika reconnects every ``reconnect_interval`` seconds (1 s by default,
or the URL's ``?reconnect_interval=``) and re-declares the exchange, queues, bindings and
consumers. If there is no connection yet (RabbitMQ down when the server starts), a
subscription retries with exponential backoff (0.1 s up to 5 s) until it gets one.

Delivery is best effort, as for Redis (see ``redis.py``): ``publish`` gives up after
``publish_timeout`` and logs and drops the message (then drops at once for a growing pause;
with ``required=True`` it raises ``BrokerUnavailable`` instead of dropping);
messages published while a subscription is reconnecting are lost, so once its queue, binding
and consumer are back, ``subscribe(topic, on_resume=...)`` calls ``on_resume()`` for the
subscriber to look in the database for what it missed (see ``redis.py``); a subscriber
1,000 messages behind loses the oldest; ``close()`` ends every subscription and closes the
connection. A lost connection is logged once (``broker_connection_lost``) however many
reconnection attempts it takes, then ``broker_connection_restored``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import suppress
from typing import Any

import aio_pika
import structlog
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractRobustConnection,
)

from ferrous.domain.errors import BrokerUnavailable
from ferrous.infrastructure.broker.delivery import (
    Inbox,
    OnResume,
    PublishOutage,
    Subscriptions,
    decode,
    describe,
    encode,
    pause_after_loss,
    pop_query_option,
)

log = structlog.get_logger(__name__)

DEFAULT_EXCHANGE = "ferrous.events"


class RabbitMQBroker:
    def __init__(
        self,
        url: str,
        *,
        exchange: str | None = None,
        publish_timeout: float = 1.0,
        connect_timeout: float = 5.0,
    ) -> None:
        """``url`` is an ``amqp://`` or ``amqps://`` URL; nothing connects until first use.

        Other URL query options are aio-pika's (``heartbeat``, ``name``, ...).
        """
        url, url_exchange = pop_query_option(url, "exchange")
        if "reconnect_interval=" not in url:
            url += ("&" if "?" in url else "?") + "reconnect_interval=1"
        self.exchange = exchange or url_exchange or DEFAULT_EXCHANGE
        self._url = url
        self._publish_timeout = publish_timeout
        self._connect_timeout = connect_timeout
        self._link: asyncio.Task[tuple[AbstractRobustConnection, AbstractExchange]] | None = None
        self._outage = PublishOutage("rabbitmq")
        self._subscriptions = Subscriptions("amqp")
        self._closed = False
        self._connection_down = False  # lost, and not restored yet

    async def publish(self, topic: str, message: dict[str, Any], *, required: bool = False) -> None:
        body = encode(message)
        if self._closed:
            if required:
                raise BrokerUnavailable("the broker is closed")
            log.debug("broker_publish_after_close", broker="rabbitmq", topic=topic)
            return

        async def send() -> None:
            _, exchange = await self._connected()
            await exchange.publish(
                aio_pika.Message(
                    body,
                    content_type="application/json",
                    delivery_mode=aio_pika.DeliveryMode.NOT_PERSISTENT,
                ),
                routing_key=topic,
                mandatory=False,  # no subscriber is not an error
            )

        await self._outage.attempt(send, timeout=self._publish_timeout, required=required)

    async def subscribe(
        self, topic: str, *, on_resume: OnResume | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        if self._closed:
            raise RuntimeError("the broker is closed")
        if not topic or "*" in topic or "#" in topic:
            raise ValueError(f"topic {topic!r}: topics are non-empty and without * or #")
        async for message in self._subscriptions.run(topic, self._pump, on_resume):
            yield message

    async def ping(self) -> None:
        """The shared connection is up (connecting first if there is none yet)."""
        connection, _ = await self._connected()
        if connection.is_closed or not connection.connected.is_set():
            raise BrokerUnavailable("the connection to RabbitMQ is lost (reconnecting)")

    async def close(self) -> None:
        self._closed = True
        await self._subscriptions.close()
        link, self._link = self._link, None
        if link is None:
            return
        # Let a connection attempt finish (it is bounded by connect_timeout) rather than
        # cancel it: a RobustConnection cancelled while connecting may go on reconnecting.
        await asyncio.wait({link}, timeout=self._connect_timeout + 1.0)
        if not link.done():
            link.cancel()
            await asyncio.wait({link})
        if not link.cancelled() and link.exception() is None:
            connection, _ = link.result()
            with suppress(Exception):
                async with asyncio.timeout(5.0):
                    await connection.close()

    async def _connected(self) -> tuple[AbstractRobustConnection, AbstractExchange]:
        """The shared connection and the publishing channel's exchange, connecting if needed.

        The connection attempt runs in its own task, so a caller that gives up (a publish
        timing out) does not abort it for the others.
        """
        link = self._link
        if link is None or (link.done() and (link.cancelled() or link.exception())):
            link = self._link = asyncio.create_task(self._connect(), name="amqp-connect")
            link.add_done_callback(_retrieve_exception)
        return await asyncio.shield(link)

    async def _connect(self) -> tuple[AbstractRobustConnection, AbstractExchange]:
        connection = await aio_pika.connect_robust(self._url, timeout=self._connect_timeout)
        connection.close_callbacks.add(self._connection_lost)
        connection.reconnect_callbacks.add(self._connection_restored)
        try:
            channel = await connection.channel(publisher_confirms=True)
            exchange = await self._declare_exchange(channel)
        except BaseException:
            with suppress(Exception):
                await connection.close()
            raise
        return connection, exchange

    def _connection_lost(self, _: object, exc: BaseException | None) -> None:
        """Called on the loss and on every failed reconnection attempt: logged once."""
        if not self._closed:
            error = describe(exc) if exc else "closed"
            (log.debug if self._connection_down else log.warning)(
                "broker_connection_lost", broker="rabbitmq", error=error
            )
            self._connection_down = True

    def _connection_restored(self, _: object) -> None:
        self._connection_down = False
        log.info("broker_connection_restored", broker="rabbitmq")

    async def _declare_exchange(self, channel: AbstractChannel) -> AbstractExchange:
        return await channel.declare_exchange(
            self.exchange, aio_pika.ExchangeType.TOPIC, durable=True
        )

    async def _pump(self, topic: str, inbox: Inbox) -> None:
        """Set up one subscription (retrying with backoff) and keep it until cancelled.

        Once set up, aio-pika's robust connection restores it after reconnections.
        """

        async def deliver(message: AbstractIncomingMessage) -> None:
            decoded = decode(message.body, "rabbitmq", topic)
            if decoded is not None:
                inbox.put(decoded)

        def restored(_: object) -> None:
            """aio-pika reopened the channel after a reconnection, with its queue, binding
            and consumer: what was published meanwhile did not reach us."""
            log.info("broker_subscription_resumed", broker="rabbitmq", topic=topic)
            inbox.resumed()

        failures = 0
        while True:
            channel: AbstractChannel | None = None
            try:
                connection, _ = await self._connected()
                channel = await connection.channel(publisher_confirms=False)
                exchange = await self._declare_exchange(channel)
                queue = await channel.declare_queue(
                    f"{self.exchange}.{topic}.{uuid.uuid4().hex[:12]}",
                    exclusive=True,
                    auto_delete=True,
                )
                await queue.bind(exchange, routing_key=topic)
                await queue.consume(deliver, no_ack=True)
                if failures:
                    log.info("broker_subscription_resumed", broker="rabbitmq", topic=topic)
                    inbox.resumed()
                failures = 0
                channel.reopen_callbacks.add(restored)
                await asyncio.Event().wait()  # until cancelled; aio-pika restores the rest
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a subscriber must never crash the server
                failures += 1
                await pause_after_loss("rabbitmq", topic, exc, failures)
            finally:
                if channel is not None:
                    with suppress(Exception):
                        async with asyncio.timeout(1.0):
                            await channel.close()


def _retrieve_exception(task: asyncio.Task[Any]) -> None:
    """Mark a failed connection attempt's exception as seen (the callers log it)."""
    if not task.cancelled():
        task.exception()
