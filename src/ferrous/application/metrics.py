"""What the application tells the metrics: claims, finished jobs and builds, log bytes.

Durations come from the database, not from the events: an event carries no times, and the
stored attempt is the truth whichever server ran it. ``observe_events`` hooks a ``Metrics``
to the bus: after commit, each ``JobStarted`` reads its job's queue wait and tags, each
``JobCompleted`` its attempt's duration, each ``BuildCompleted`` its build's; these are
one-row reads by primary key. Observations stay on the server that handled the command (a
histogram per server); the counts of builds, jobs, agents and the outbox are read at scrape
time (``SystemSnapshot``), so every server reports the same.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

import structlog

from ferrous.application.commands import AppendLog
from ferrous.domain.events import BuildCompleted, Event, JobCompleted, JobStarted

if TYPE_CHECKING:
    from ferrous.application.messagebus import MessageBus

log = structlog.get_logger(__name__)


class Metrics(Protocol):
    """Observations of this server's work; cheap and never raising (called after commit)."""

    def job_claimed(self, labels: str, queue_wait: float) -> None:
        """A job was claimed ``queue_wait`` seconds after it was queued; ``labels`` is its
        label set (``label_set``)."""
        ...

    def job_finished(self, status: str, duration: float) -> None: ...

    def build_finished(self, status: str, duration: float) -> None: ...

    def log_bytes(self, n: int) -> None:
        """``n`` bytes of job log were accepted."""
        ...


class NoMetrics:
    """Observes nothing: the default of ``Dependencies`` and of tests that do not look."""

    def job_claimed(self, labels: str, queue_wait: float) -> None:
        pass

    def job_finished(self, status: str, duration: float) -> None:
        pass

    def build_finished(self, status: str, duration: float) -> None:
        pass

    def log_bytes(self, n: int) -> None:
        pass


def label_set(tags: Iterable[str]) -> str:
    """The one label value of a set of tags: sorted, joined with ","; "" for none."""
    return ",".join(sorted(set(tags)))


@dataclass(frozen=True, slots=True, kw_only=True)
class JobTiming:
    """One attempt of a job: its tags and when it was queued, started and finished."""

    tags: tuple[str, ...]
    queued_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None


@dataclass(frozen=True, slots=True, kw_only=True)
class BuildTiming:
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


@dataclass(frozen=True, slots=True, kw_only=True)
class SystemSnapshot:
    """Counts from the database, the same whichever server is asked."""

    builds: Mapping[str, int] = field(default_factory=dict)  # by status
    jobs: Mapping[str, int] = field(default_factory=dict)  # by status
    pending: Mapping[str, int] = field(default_factory=dict)  # pending jobs by label set
    running: int = 0
    agents_online: int = 0
    capacity_slots: int = 0  # of the agents online
    used_slots: int = 0  # running jobs held by agents online
    outbox_backlog: int = 0  # events not yet published
    outbox_oldest_age: float = 0.0  # seconds; 0 without a backlog


class MetricsReads(Protocol):
    async def job_timing(self, job_id: str, attempt: int) -> JobTiming | None:
        """That attempt of the job (None: no such job or attempt)."""
        ...

    async def build_timing(self, build_id: str) -> BuildTiming | None: ...

    async def snapshot(self, now: datetime, online_since: datetime) -> SystemSnapshot:
        """The counts, in one short batch of queries; agents seen at or after
        ``online_since`` are online."""
        ...


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return max(0.0, (end - start).total_seconds())


class EventObserver:
    """Turns the bus's events into observations (``observe_events`` subscribes it)."""

    def __init__(self, reads: MetricsReads, metrics: Metrics) -> None:
        self.reads = reads
        self.metrics = metrics

    async def job_started(self, event: Event) -> None:
        if not isinstance(event, JobStarted):
            return
        timing = await self.reads.job_timing(event.job_id, event.attempt)
        if timing is not None:
            wait = _seconds(timing.queued_at, timing.started_at)
            if wait is not None:
                self.metrics.job_claimed(label_set(timing.tags), wait)

    async def job_completed(self, event: Event) -> None:
        """Only jobs that ran have a duration (one canceled while pending has none)."""
        if not isinstance(event, JobCompleted):
            return
        timing = await self.reads.job_timing(event.job_id, event.attempt)
        if timing is not None:
            duration = _seconds(timing.started_at, timing.finished_at)
            if duration is not None:
                self.metrics.job_finished(event.status, duration)

    async def build_completed(self, event: Event) -> None:
        """From its start (its creation when it never started) to its end."""
        if not isinstance(event, BuildCompleted):
            return
        timing = await self.reads.build_timing(event.build_id)
        if timing is not None:
            duration = _seconds(timing.started_at or timing.created_at, timing.finished_at)
            if duration is not None:
                self.metrics.build_finished(event.status, duration)

    async def log_appended(self, command: Any, size: Any) -> None:
        if isinstance(command, AppendLog):
            self.metrics.log_bytes(len(command.data))


def observe_events(bus: MessageBus, reads: MetricsReads, metrics: Metrics) -> EventObserver:
    """Subscribe ``metrics`` to the bus's events (after commit, on this server)."""
    observer = EventObserver(reads, metrics)
    bus.subscribe(JobStarted, observer.job_started)
    bus.subscribe(JobCompleted, observer.job_completed)
    bus.subscribe(BuildCompleted, observer.build_completed)
    bus.after(AppendLog, observer.log_appended)
    return observer
