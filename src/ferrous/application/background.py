"""The server's background work: the outbox relay and the periodic housekeeping.

Each loop survives its own errors (logged, then retried after a pause), because a failing
database or broker must not take the server down: the work is picked up when they return.

With several servers on one database these loops are singletons: ``run_as_singleton`` runs
one only while this server holds its ``LeaderLock``; the other servers try again every
``SINGLETON_RETRY`` seconds, so one of them takes over within seconds when the holder dies.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import structlog

from ferrous.application.commands import ReapLeases, StartDueJobs
from ferrous.application.messagebus import MessageBus
from ferrous.application.ports import LeaderLock
from ferrous.application.signals import Flag

log = structlog.get_logger(__name__)

#: Takes up to ``limit`` unpublished outbox messages, publishes them, marks them published;
#: returns how many there were.
RelayBatch = Callable[[int], Awaitable[int]]

RELAY_BATCH = 200
RELAY_IDLE = 1.0  # seconds between relay passes when nothing nudges it
ERROR_PAUSE = 2.0
SINGLETON_RETRY = 1.0  # seconds between attempts to take a singleton another server holds

#: The singletons, by lock name.
OUTBOX_RELAY = "outbox_relay"
LEASE_REAPER = "lease_reaper"
DELAYED_JOBS = "delayed_jobs"
SCHEDULE_FIRER = "schedule_firer"  # see schedule_firer.py
STATUS_SENDER = "status_sender"  # see status_sender.py
NOTIFICATION_SENDER = "notification_sender"  # see notification_sender.py
LOG_ARCHIVER = "log_archiver"  # see log_archive.py
CLEANUP = "cleanup"  # see retention.py
LOG_SWEEP_INTERVAL = 60.0  # seconds between sweeps for finished jobs' logs left in chunks


async def run_outbox_relay(relay_batch: RelayBatch, nudge: Flag) -> None:
    """Publish committed events in commit order; woken after commits, else every second.

    While the broker or the database is away, a pass fails every ``ERROR_PAUSE`` seconds;
    the events stay in the outbox. That is logged once per outage (``outbox_relay_failed``,
    then ``outbox_relay_recovered`` with the failed passes), not on every pass.
    """
    failures = 0
    while True:
        try:
            published = await relay_batch(RELAY_BATCH)
        except Exception as exc:
            if not failures:
                log.exception("outbox_relay_failed")
            else:
                log.debug("outbox_relay_still_failing", error=repr(exc), attempt=failures + 1)
            failures += 1
            await asyncio.sleep(ERROR_PAUSE)
            continue
        if failures:
            log.info("outbox_relay_recovered", failed_passes=failures)
            failures = 0
        if published < RELAY_BATCH:
            await nudge.wait(RELAY_IDLE)


async def run_as_singleton(
    lock: LeaderLock,
    name: str,
    work: Callable[[], Coroutine[Any, Any, Any]],
    retry: float = SINGLETON_RETRY,
) -> None:
    """Run ``work()`` while this server holds the lock ``name``; wait for it otherwise.

    When the lock is lost (its connection died) the work is cancelled at once and the loop
    goes back to trying to acquire it. Cancelling this task stops the work and releases the
    lock.
    """
    while True:
        try:
            held = await lock.try_acquire(name)
        except Exception:
            log.exception("singleton_acquire_failed", singleton=name)
            held = None
        if held is None:
            await asyncio.sleep(retry)
            continue
        log.info("singleton_acquired", singleton=name)
        working: asyncio.Task[Any] = asyncio.create_task(work(), name=f"singleton:{name}")
        watching = asyncio.create_task(held.lost(), name=f"singleton_watch:{name}")
        try:
            await asyncio.wait({working, watching}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (working, watching):
                task.cancel()
            await asyncio.gather(working, watching, return_exceptions=True)
            await held.release()
        if working.done() and not working.cancelled() and working.exception() is not None:
            log.error("singleton_failed", singleton=name, error=repr(working.exception()))
        log.warning("singleton_released", singleton=name)
        await asyncio.sleep(retry)


async def _every(seconds: float, name: str, action: Callable[[], Awaitable[Any]]) -> None:
    while True:
        try:
            await action()
        except Exception:
            log.exception("background_task_failed", task=name)
        await asyncio.sleep(seconds)


async def run_lease_reaper(bus: MessageBus, lease_timeout: float) -> None:
    """Expire leases of silent agents."""
    await _every(max(lease_timeout / 4, 0.5), "reap_leases", lambda: bus.handle(ReapLeases()))


async def run_delayed_job_starter(bus: MessageBus) -> None:
    """Start delayed jobs that are due."""
    await _every(1.0, "start_due_jobs", lambda: bus.handle(StartDueJobs()))


async def run_log_archiver(sweep: Callable[[], Awaitable[Any]]) -> None:
    """Archive the logs that the servers finishing their jobs did not (they died first)."""
    await _every(LOG_SWEEP_INTERVAL, "archive_logs", sweep)


async def run_cleanup(cleanup: Callable[[], Awaitable[Any]], interval: float) -> None:
    """Delete expired artifacts, stale caches and old logs (``retention.Retention``)."""
    await _every(interval, "cleanup", cleanup)
