"""The server's background work: the outbox relay and the periodic housekeeping.

Each loop survives its own errors (logged, then retried after a pause), because a failing
database or broker must not take the server down: the work is picked up when they return.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from ferrous.application.commands import ReapLeases, StartDueJobs
from ferrous.application.messagebus import MessageBus
from ferrous.application.signals import Flag

log = structlog.get_logger(__name__)

#: Takes up to ``limit`` unpublished outbox messages, publishes them, marks them published;
#: returns how many there were.
RelayBatch = Callable[[int], Awaitable[int]]

RELAY_BATCH = 200
RELAY_IDLE = 1.0  # seconds between relay passes when nothing nudges it
ERROR_PAUSE = 2.0


async def run_outbox_relay(relay_batch: RelayBatch, nudge: Flag) -> None:
    """Publish committed events in commit order; woken after commits, else every second."""
    while True:
        try:
            published = await relay_batch(RELAY_BATCH)
        except Exception:
            log.exception("outbox_relay_failed")
            await asyncio.sleep(ERROR_PAUSE)
            continue
        if published < RELAY_BATCH:
            await nudge.wait(RELAY_IDLE)


async def _every(seconds: float, name: str, action: Callable[[], Awaitable[Any]]) -> None:
    while True:
        try:
            await action()
        except Exception:
            log.exception("background_task_failed", task=name)
        await asyncio.sleep(seconds)


async def run_housekeeping(bus: MessageBus, lease_timeout: float) -> None:
    """Expire leases of silent agents and start delayed jobs that are due."""
    async with asyncio.TaskGroup() as group:
        group.create_task(
            _every(max(lease_timeout / 4, 0.5), "reap_leases", lambda: bus.handle(ReapLeases()))
        )
        group.create_task(_every(1.0, "start_due_jobs", lambda: bus.handle(StartDueJobs())))
