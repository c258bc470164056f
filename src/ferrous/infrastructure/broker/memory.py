"""The in-process broker: the default for a single server, and the one tests use.

Each subscriber gets its own bounded queue; a subscriber too slow to keep up loses the oldest
messages rather than slowing publishers down (the database is the source of truth). Messages
go through JSON like on the network brokers, so a message they would refuse is refused here
too, and subscribers never share a mutable object.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any

from ferrous.domain.errors import BrokerUnavailable
from ferrous.infrastructure.broker.delivery import OnResume, encode

QUEUE_SIZE = 1000
_CLOSED: dict[str, Any] = {}  # put in every queue by close(): ends the subscriptions


class InMemoryBroker:
    def __init__(self) -> None:
        self._subscribers: dict[str, set[asyncio.Queue[dict[str, Any]]]] = defaultdict(set)
        self._closed = False

    async def publish(self, topic: str, message: dict[str, Any], *, required: bool = False) -> None:
        encoded = encode(message)  # the network brokers' wire format: refuses what they refuse
        if self._closed:
            if required:
                raise BrokerUnavailable("the broker is closed")
            return
        for queue in list(self._subscribers.get(topic, ())):
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(json.loads(encoded))

    async def subscribe(
        self, topic: str, *, on_resume: OnResume | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """``on_resume`` is never called: an in-process subscription is never lost."""
        if self._closed:
            raise RuntimeError("the broker is closed")
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_SIZE)
        self._subscribers[topic].add(queue)
        try:
            while True:
                message = await queue.get()
                if message is _CLOSED:
                    return
                yield message
        finally:
            self._subscribers[topic].discard(queue)

    async def ping(self) -> None:
        """In-process: always answers."""

    async def close(self) -> None:
        self._closed = True
        for queues in self._subscribers.values():
            for queue in queues:
                if queue.full():
                    queue.get_nowait()
                queue.put_nowait(_CLOSED)
