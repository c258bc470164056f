"""What the senders of outgoing messages share: commit statuses to forges and notifications to
webhooks, chat and mail are both rows queued in the commit that changed a build, then sent by
a singleton that retries with the same schedule and survives the same outages.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import structlog

from ferrous.application.signals import Flag

log = structlog.get_logger(__name__)

T = TypeVar("T")
R = TypeVar("R")

FIRST_DELAY = 1.0
MAX_RETRY_AFTER = 3600.0  # a receiver's Retry-After is honoured up to this
ERROR_PAUSE = 2.0  # seconds after a pass that failed (the database is away)
IDLE = 1.0  # seconds between passes when nothing wakes the sender


def backoff(attempts: int, retry_after: float | None, *, cap: float) -> float:
    """Seconds before the next attempt, after ``attempts`` failed ones (1, 2, 4, ... up to
    ``cap``), or the receiver's ``Retry-After`` when it gave one."""
    if retry_after is not None:
        return min(max(retry_after, FIRST_DELAY), MAX_RETRY_AFTER)
    return min(FIRST_DELAY * float(2 ** max(attempts - 1, 0)), cap)


def build_url(server_url: str, build_id: str) -> str:
    """The build's page, as ``CI_PIPELINE_URL`` names it."""
    return f"{server_url.rstrip('/')}/builds/{build_id}"


async def send_all(
    items: Sequence[T], send: Callable[[T], Awaitable[R]], concurrency: int
) -> list[R]:
    """``send`` each item, at most ``concurrency`` at once; the results in order."""
    gate = asyncio.Semaphore(concurrency)

    async def one(item: T) -> R:
        async with gate:
            return await send(item)

    return list(await asyncio.gather(*(one(item) for item in items)))


async def run_sender(
    name: str,
    send_due: Callable[[], Awaitable[int]],
    nudge: Flag,
    *,
    batch: int,
    idle: float = IDLE,
) -> None:
    """Call ``send_due`` (one pass; how many it tried) for ever: at once again after a full
    batch, else when ``nudge`` is set or after ``idle`` seconds (work queued by other servers,
    retries coming due). A failing pass is logged once (``<name>_failed``), then quietly until
    it recovers."""
    failures = 0
    while True:
        try:
            tried = await send_due()
        except Exception as exc:
            if not failures:
                log.exception(f"{name}_failed")
            else:
                log.debug(f"{name}_still_failing", error=repr(exc), attempt=failures + 1)
            failures += 1
            await asyncio.sleep(ERROR_PAUSE)
            continue
        if failures:
            log.info(f"{name}_recovered", failed_passes=failures)
            failures = 0
        if tried < batch:
            await nudge.wait(idle)
