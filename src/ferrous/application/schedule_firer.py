"""The schedule firer: a singleton loop that fires schedules when their tick comes.

It sleeps until the earliest ``next_run_at`` of the active schedules, and at most ``poll``
seconds, so a schedule created or changed on another server is noticed even if its event
(``Schedule*`` through the broker, which sets ``changed``) is lost. Each due schedule fires
in its own transaction (``FireSchedule``), so one that fails cannot hold the others back;
a pass that had a failure waits at least ``FAILURE_PAUSE`` before trying again.

It runs on one server at a time (``run_as_singleton``); firing itself does not rely on that:
the compare-and-set in ``fire_schedule`` keeps a tick from firing twice even when two servers
race for it.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime

import structlog

from ferrous.application.commands import FireSchedule
from ferrous.application.messagebus import MessageBus

log = structlog.get_logger(__name__)

DUE_BATCH = 50  # schedules fired per pass; a full batch starts the next pass at once
FAILURE_PAUSE = 10.0  # seconds before a failed schedule is tried again
ERROR_PAUSE = 2.0  # seconds after a pass that could not read the schedules
LATE = 0.01  # seconds past a tick before waking: the tick is surely due then


async def fire_due_schedules(bus: MessageBus) -> tuple[int, int, datetime | None]:
    """One pass: fire what is due now; (fired, failed, the earliest next tick)."""
    now = bus.deps.clock.now()
    async with bus.uow_factory() as uow:
        due = await uow.schedules.due(now, DUE_BATCH)
    fired = failed = 0
    for schedule_id in due:
        try:
            build = await bus.handle(FireSchedule(schedule_id=schedule_id))
        except Exception:
            failed += 1
            log.exception("schedule_fire_failed", schedule_id=schedule_id)
        else:
            fired += build is not None
    async with bus.uow_factory() as uow:
        upcoming = await uow.schedules.next_run_at()
    if len(due) >= DUE_BATCH:
        upcoming = now  # more are due
    return fired, failed, upcoming


async def run_schedule_firer(bus: MessageBus, changed: asyncio.Event, poll: float) -> None:
    """Fire schedules on time until cancelled; ``changed`` cuts a wait short."""
    while True:
        changed.clear()  # a change during the pass is seen by the wait below
        try:
            _, failed, upcoming = await fire_due_schedules(bus)
        except Exception:
            log.exception("schedule_firer_failed")
            await asyncio.sleep(ERROR_PAUSE)
            continue
        wait = poll
        if upcoming is not None:
            until = (upcoming - bus.deps.clock.now()).total_seconds() + LATE
            wait = min(poll, max(until, 0.0))
        if failed:
            wait = max(wait, FAILURE_PAUSE)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(changed.wait(), wait)
