"""What the network brokers share, so both are best effort in the same way.

``Inbox`` buffers a subscription (the oldest messages go when a subscriber falls behind)
and tells the subscriber when the subscription is back after a loss (``on_resume``),
``PublishOutage`` makes publishing during an outage drop quickly instead of hanging request
handlers (or, for a ``required`` publish such as the outbox relay's, raise
``BrokerUnavailable`` quickly so the message is kept and sent again later), ``backoff``
paces reconnects, ``encode``/``decode`` are the wire format (compact JSON objects).
See ``redis.py`` for the behaviour they give.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import structlog

from ferrous.domain.errors import BrokerUnavailable

log = structlog.get_logger(__name__)


def redact(url: str) -> str:
    """``url`` without its password, fit for logs and error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rpartition("@")
    user = netloc[0].partition(":")[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[2]}"))


def pop_query_option(url: str, name: str) -> tuple[str, str | None]:
    """``url`` without the query option ``name`` (its client library would refuse it), and
    the option's value."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    values = [value for key, value in query if key == name]
    if not values:
        return url, None
    rest = urlencode([(key, value) for key, value in query if key != name])
    return urlunsplit(parts._replace(query=rest)), values[-1]


def encode(message: dict[str, Any]) -> bytes:
    """JSON for ``message``; TypeError or ValueError if it is not a JSON-safe dict (a bug)."""
    if not isinstance(message, dict):
        raise TypeError(f"a broker message is a dict, not {type(message).__name__}")
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def decode(data: bytes | str, broker: str, topic: str) -> dict[str, Any] | None:
    """The message in ``data``, or None (logged) when it is not a JSON object."""
    try:
        message = json.loads(data)
    except ValueError:
        message = None
    if not isinstance(message, dict):
        log.warning("broker_message_invalid", broker=broker, topic=topic, size=len(data))
        return None
    return message


def describe(exc: BaseException) -> str:
    """An exception for the logs: its type, and its message when it has one."""
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def backoff(attempt: int, first: float = 0.1, limit: float = 5.0) -> float:
    """Seconds to wait before reconnection attempt ``attempt`` (1, 2, ...), with jitter."""
    return min(limit, first * 2.0 ** (attempt - 1)) * random.uniform(0.5, 1.0)


async def pause_after_loss(broker: str, topic: str, exc: BaseException, failures: int) -> None:
    """Log a lost subscription (a warning once per outage, then debug) and wait the
    backoff before subscribing again."""
    delay = backoff(failures)
    (log.warning if failures == 1 else log.debug)(
        "broker_subscription_lost",
        broker=broker,
        topic=topic,
        error=describe(exc),
        attempt=failures,
        retry_in=round(delay, 2),
    )
    await asyncio.sleep(delay)


class PublishOutage:
    """Publishing while the broker is away: after a failure, drop at once for a pause that
    grows from FIRST_PAUSE to LONGEST_PAUSE, then try again; log once per outage.

    A ``required`` publish is not dropped: it raises ``BrokerUnavailable`` instead (at once
    during the pause), and the caller keeps the message.
    """

    FIRST_PAUSE = 0.5
    LONGEST_PAUSE = 5.0

    def __init__(self, broker: str) -> None:
        self._broker = broker
        self._pause = 0.0
        self._until = 0.0
        self._dropped = 0
        self._error = ""

    def skip(self, required: bool = False) -> bool:
        """True (and counted as dropped) while pausing after a failure; a ``required``
        publish raises ``BrokerUnavailable`` instead."""
        if self._pause and asyncio.get_running_loop().time() < self._until:
            if required:
                raise BrokerUnavailable(f"{self._broker} is unavailable: {self._error}")
            self._dropped += 1
            return True
        return False

    def failed(self, exc: BaseException, required: bool = False) -> None:
        """Note a failed publish; raises ``BrokerUnavailable`` (from ``exc``) if ``required``,
        else the message counts as dropped."""
        self._error = describe(exc)
        if not self._pause:
            log.warning("broker_publish_failed", broker=self._broker, error=self._error)
        self._pause = min(self.LONGEST_PAUSE, self._pause * 2 or self.FIRST_PAUSE)
        self._until = asyncio.get_running_loop().time() + self._pause
        if required:
            raise BrokerUnavailable(f"{self._broker} is unavailable: {self._error}") from exc
        self._dropped += 1

    async def attempt(
        self, send: Callable[[], Awaitable[None]], *, timeout: float, required: bool
    ) -> None:
        """One publish under these rules: skipped while paused, bounded by ``timeout``."""
        if self.skip(required):
            return
        try:
            async with asyncio.timeout(timeout):
                await send()
        except Exception as exc:  # whatever the client raises, the message did not go out
            self.failed(exc, required)
        else:
            self.succeeded()

    def succeeded(self) -> None:
        if self._pause:
            log.info("broker_publish_recovered", broker=self._broker, dropped=self._dropped)
            self._pause = 0.0
            self._dropped = 0


#: Called when a subscription is back after a loss (see ``Inbox.resumed``).
OnResume = Callable[[], None]


class Inbox:
    """A subscription's bounded buffer: when it is full, the oldest message makes room."""

    def __init__(self, topic: str, size: int = 1000, on_resume: OnResume | None = None) -> None:
        self.topic = topic
        self._messages: deque[dict[str, Any]] = deque(maxlen=size)
        self._arrived = asyncio.Event()
        self._closed = False
        self._lagging = False
        self._on_resume = on_resume

    def resumed(self) -> None:
        """The pump got the subscription back after losing it (or after it could not be set
        up at first): messages published in between are gone, so the subscriber's
        ``on_resume`` is called to look for what they would have said (the database has it).
        Call it once the broker has confirmed the subscription, so that every message
        published after the call is delivered."""
        if self._on_resume is None:
            return
        try:
            self._on_resume()
        except Exception:  # the subscriber's bug must not end the subscription
            log.exception("broker_resume_callback_failed", topic=self.topic)

    def put(self, message: dict[str, Any]) -> None:
        full = len(self._messages) == self._messages.maxlen
        if full and not self._lagging:
            log.warning("broker_subscriber_lagging", topic=self.topic)
        self._lagging = full
        self._messages.append(message)
        self._arrived.set()

    def close(self) -> None:
        self._closed = True
        self._arrived.set()

    async def get(self) -> dict[str, Any] | None:
        """The next message, or None once closed (messages still buffered are dropped)."""
        while not self._closed:
            if self._messages:
                return self._messages.popleft()
            self._arrived.clear()
            await self._arrived.wait()
        return None


Pump = Callable[[str, Inbox], Coroutine[Any, Any, None]]


class Subscriptions:
    """A broker's open subscriptions: each is a pump task feeding an ``Inbox``."""

    def __init__(self, broker: str) -> None:
        self._broker = broker
        self._pumps: dict[asyncio.Task[None], Inbox] = {}

    async def run(
        self, topic: str, pump: Pump, on_resume: OnResume | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """Yield what ``pump`` puts into the subscription's inbox, until it ends or is closed."""
        inbox = Inbox(topic, on_resume=on_resume)
        task = asyncio.create_task(pump(topic, inbox), name=f"{self._broker}-subscription:{topic}")
        self._pumps[task] = inbox
        try:
            while (message := await inbox.get()) is not None:
                yield message
        finally:
            self._pumps.pop(task, None)
            task.cancel()
            await asyncio.wait({task})

    async def close(self, timeout: float = 5.0) -> None:
        """End every subscription: their iterators stop, their pumps are cancelled."""
        pumps = list(self._pumps)
        for task, inbox in self._pumps.items():
            task.cancel()
            inbox.close()
        self._pumps.clear()
        if pumps:
            await asyncio.wait(pumps, timeout=timeout)
