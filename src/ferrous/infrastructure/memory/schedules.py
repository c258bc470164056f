"""In-memory schedules, with the SQL adapter's compare-and-set on ``version``.

A unit of work stages added, saved and removed schedules; on commit each change is checked
against the committed version it was based on, so of two units of work that fired the same
tick only the first to commit succeeds (the other gets ``StaleState`` and the bus runs its
command again, as on SQL).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import datetime
from typing import Any

from ferrous.application.ports import StaleState
from ferrous.domain.errors import Conflict, NotFound
from ferrous.domain.schedule import Schedule
from ferrous.infrastructure.memory.store import InMemoryStore


def _detached(schedule: Schedule) -> Schedule:
    """A copy without the recorded events: what a database row would give back."""
    events, schedule.events = schedule.events, []
    try:
        return copy.deepcopy(schedule)
    finally:
        schedule.events = events


class InMemoryScheduleRepository:
    def __init__(self, store: InMemoryStore, track: Callable[[Any], None]) -> None:
        self._store = store
        self._track = track
        self._staged: dict[str, Schedule | None] = {}  # None: removed
        self._bases: dict[str, int | None] = {}  # the committed version (None: added here)

    def _current(self, schedule_id: str) -> Schedule | None:
        if schedule_id in self._staged:
            return self._staged[schedule_id]
        return self._store.schedules.get(schedule_id)

    def _visible(self) -> list[Schedule]:
        ids = set(self._store.schedules) | set(self._staged)
        return [s for s in map(self._current, ids) if s is not None]

    async def add(self, schedule: Schedule) -> None:
        if schedule.id in self._store.schedules or schedule.id in self._staged:
            raise Conflict(f"schedule {schedule.id} exists already")
        self._staged[schedule.id] = _detached(schedule)
        self._bases[schedule.id] = None
        self._track(schedule)

    async def get(self, schedule_id: str) -> Schedule:
        schedule = self._current(schedule_id)
        if schedule is None:
            raise NotFound(f"no schedule {schedule_id}")
        return _detached(schedule)

    def _based(self, schedule: Schedule) -> None:
        """Check ``schedule`` was read at the version this unit of work sees; remember the
        committed version it is based on."""
        current = self._current(schedule.id)
        if current is None:
            raise NotFound(f"no schedule {schedule.id}")
        if current.version != schedule.version:
            raise StaleState(
                f"schedule {schedule.id} is at version {current.version}, this change was "
                f"made at {schedule.version}"
            )
        self._bases.setdefault(schedule.id, schedule.version)
        self._track(schedule)

    async def save(self, schedule: Schedule) -> None:
        self._based(schedule)
        schedule.version += 1
        self._staged[schedule.id] = _detached(schedule)

    async def remove(self, schedule: Schedule) -> None:
        self._based(schedule)
        self._staged[schedule.id] = None

    async def due(self, now: datetime, limit: int) -> list[str]:
        due = sorted(
            (s.next_run_at, s.id)
            for s in self._visible()
            if s.active and s.next_run_at is not None and s.next_run_at <= now
        )
        return [schedule_id for _, schedule_id in due[: max(limit, 0)]]

    async def next_run_at(self) -> datetime | None:
        times = [s.next_run_at for s in self._visible() if s.active and s.next_run_at]
        return min(times, default=None)

    def check(self) -> None:
        """Before commit: nobody committed a change to what this unit of work changed."""
        committed = self._store.schedules
        for schedule_id, base in self._bases.items():
            current = committed.get(schedule_id)
            if base is None and current is not None:
                raise Conflict(f"schedule {schedule_id} exists already")
            if base is not None and (current is None or current.version != base):
                raise StaleState(f"schedule {schedule_id} was changed by someone else")

    def apply(self) -> None:
        """On commit, after ``check`` (no await in between): make the changes visible."""
        for schedule_id, schedule in self._staged.items():
            if schedule is None:
                self._store.schedules.pop(schedule_id, None)
            else:
                self._store.schedules[schedule_id] = schedule
