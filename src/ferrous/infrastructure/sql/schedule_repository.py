"""Schedules on SQL: a row each, stored with a compare-and-set on ``version``.

``save`` and ``remove`` run ``... WHERE id = :id AND version = :version``. On PostgreSQL a
second writer of the same row waits for the first transaction and then re-evaluates its
WHERE on the committed row, which no longer matches: it gets ``StaleState`` and the bus runs
its command again on fresh state (for the firer: the tick is no longer due). On SQLite
writers are serialized and the UPDATE sees the committed row directly.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Row, bindparam, delete, func, insert, select, update

from ferrous.application.ports import StaleState
from ferrous.domain.errors import NotFound
from ferrous.domain.schedule import Schedule
from ferrous.infrastructure.sql.schema import schedules as s
from ferrous.infrastructure.sql.session import SqlSession

Track = Callable[[Any], None]

_CHANGEABLE = (
    "description",
    "cron",
    "timezone",
    "ref",
    "variables",
    "active",
    "next_run_at",
    "last_run_at",
    "last_build_id",
)
_SELECT = select(s).where(s.c.id == bindparam("schedule_id"))
_UPDATE = (
    update(s)
    .where(s.c.id == bindparam("b_id"), s.c.version == bindparam("b_version"))
    .values(version=s.c.version + 1, **{name: bindparam("b_" + name) for name in _CHANGEABLE})
)
_DELETE = delete(s).where(s.c.id == bindparam("b_id"), s.c.version == bindparam("b_version"))
_DUE = (
    select(s.c.id)
    .where(s.c.active.is_(True), s.c.next_run_at <= bindparam("now"))
    .order_by(s.c.next_run_at, s.c.id)
    .limit(bindparam("limit"))
)
_NEXT_RUN_AT = select(func.min(s.c.next_run_at)).where(s.c.active.is_(True))


def schedule_row(schedule: Schedule) -> dict[str, Any]:
    return {
        "id": schedule.id,
        "project_id": schedule.project_id,
        "pipeline_id": schedule.pipeline_id,
        "created_at": schedule.created_at,
        "version": schedule.version,
        **{name: getattr(schedule, name) for name in _CHANGEABLE},
    }


def schedule_from_row(row: Row[Any]) -> Schedule:
    return Schedule(
        id=row.id,
        project_id=row.project_id,
        pipeline_id=row.pipeline_id,
        description=row.description,
        cron=row.cron,
        timezone=row.timezone,
        ref=row.ref,
        variables=dict(row.variables),
        active=row.active,
        next_run_at=row.next_run_at,
        last_run_at=row.last_run_at,
        last_build_id=row.last_build_id,
        created_at=row.created_at,
        version=row.version,
    )


class SqlScheduleRepository:
    def __init__(self, session: SqlSession, track: Track) -> None:
        self._session = session
        self._track = track

    async def add(self, schedule: Schedule) -> None:
        await self._session.execute_write(insert(s), schedule_row(schedule))
        self._track(schedule)

    async def get(self, schedule_id: str) -> Schedule:
        row = (await self._session.execute(_SELECT, {"schedule_id": schedule_id})).first()
        if row is None:
            raise NotFound(f"no schedule {schedule_id}")
        return schedule_from_row(row)

    async def save(self, schedule: Schedule) -> None:
        params = {
            "b_id": schedule.id,
            "b_version": schedule.version,
            **{"b_" + name: getattr(schedule, name) for name in _CHANGEABLE},
        }
        if await self._session.execute_write(_UPDATE, params) != 1:
            await self._raise_stale(schedule)
        schedule.version += 1
        self._track(schedule)

    async def remove(self, schedule: Schedule) -> None:
        params = {"b_id": schedule.id, "b_version": schedule.version}
        if await self._session.execute_write(_DELETE, params) != 1:
            await self._raise_stale(schedule)
        self._track(schedule)

    async def _raise_stale(self, schedule: Schedule) -> None:
        result = await self._session.execute(select(s.c.version).where(s.c.id == schedule.id))
        stored = result.scalar_one_or_none()
        if stored is None:
            raise NotFound(f"no schedule {schedule.id}")
        raise StaleState(
            f"schedule {schedule.id} is at version {stored}, this change was made at "
            f"{schedule.version}"
        )

    async def due(self, now: datetime, limit: int) -> list[str]:
        result = await self._session.execute(_DUE, {"now": now, "limit": limit})
        return [str(schedule_id) for schedule_id in result.scalars()]

    async def next_run_at(self) -> datetime | None:
        result = await self._session.execute(_NEXT_RUN_AT)
        value: datetime | None = result.scalar_one_or_none()
        return value
