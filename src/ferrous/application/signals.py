"""Wake-ups inside one server: "jobs may be claimable" and "job X's log grew".

Long-polling claims and live log streams wait on these instead of polling the database.
They are fed by this process's own events and by messages from other servers through the
broker; every waiter also has a timeout, so a lost wake-up only delays, never blocks.
"""

from __future__ import annotations

import asyncio
from contextlib import suppress


class Flag:
    """A wake-up many tasks can wait for; each ``set`` wakes everyone waiting right then."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def set(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self, timeout: float) -> bool:
        """True when woken, False on timeout."""
        event = self._event
        with suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)
            return True
        return False


class JobSignals:
    def __init__(self) -> None:
        self.jobs_available = Flag()
        self._logs: dict[str, Flag] = {}
        self._listeners: dict[str, int] = {}
        #: The server is stopping: long-polls and live logs answer now instead of waiting
        #: for a wake-up, so the stop does not wait for them (nor cut them off mid-answer).
        self.closing = False

    def close(self) -> None:
        self.closing = True
        self.wake_all()

    async def wait_for_jobs(self, timeout: float) -> None:
        await self.jobs_available.wait(timeout)

    def log_grew(self, job_id: str) -> None:
        flag = self._logs.get(job_id)
        if flag is not None:
            flag.set()

    def wake_all(self) -> None:
        """Wake every waiter: wake-ups may have been missed (a broker subscription was
        away), so claims and live logs look at the database again."""
        self.jobs_available.set()
        for flag in list(self._logs.values()):
            flag.set()

    def watch_log(self, job_id: str) -> LogWatch:
        """Start watching a job's log now (so no wake-up after this call is missed)."""
        flag = self._logs.setdefault(job_id, Flag())
        self._listeners[job_id] = self._listeners.get(job_id, 0) + 1
        return LogWatch(self, job_id, flag)

    def _unwatch(self, job_id: str) -> None:
        self._listeners[job_id] -= 1
        if not self._listeners[job_id]:
            del self._listeners[job_id]
            self._logs.pop(job_id, None)


class LogWatch:
    def __init__(self, signals: JobSignals, job_id: str, flag: Flag) -> None:
        self._signals = signals
        self._job_id = job_id
        self._flag = flag
        self._event = flag._event  # armed now: a wake-up before the first wait counts
        self._closed = False

    async def wait(self, timeout: float) -> bool:
        """True when the log may have grown, False after ``timeout`` of silence."""
        event = self._event
        woken = event.is_set()
        if not woken:
            with suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), timeout)
                woken = True
        self._event = self._flag._event
        return woken

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._signals._unwatch(self._job_id)
