"""The metrics' reads on SQL: one attempt's or build's times, and the counts of a scrape.

The snapshot is one connection and a handful of aggregate SELECTs (the status columns are
indexed). Pending jobs are grouped by their ``tags`` column as text: it holds the sorted,
de-duplicated tags as JSON (``build_rows``), so equal label sets group together; the groups
are decoded and merged here, in case two writers spelled the same list differently.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime
from typing import Any

from sqlalchemy import Text, and_, cast, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ferrous.application.metrics import BuildTiming, JobTiming, SystemSnapshot, label_set
from ferrous.domain.agent import AgentStatus
from ferrous.domain.statuses import JobStatus
from ferrous.infrastructure.sql.schema import agents, builds, job_attempts, jobs, outbox
from ferrous.infrastructure.sql.session import raise_storage_error

_j, _a = jobs.c, job_attempts.c
_BUILD_TIMING = select(builds.c.created_at, builds.c.started_at, builds.c.finished_at)
_TAGS_TEXT = cast(_j.tags, Text)


def _online(since: datetime) -> Any:
    return and_(agents.c.status == AgentStatus.ONLINE.value, agents.c.last_seen_at >= since)


class SqlMetricsQueries:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def job_timing(self, job_id: str, attempt: int) -> JobTiming | None:
        """The finished attempt's row when there is one; else the job's own times if the
        attempt is its current one (running, or just started)."""
        statement = (
            select(
                _j.tags,
                _j.attempt,
                _j.queued_at,
                _j.started_at,
                _j.finished_at,
                _a.started_at.label("attempt_started_at"),
                _a.finished_at.label("attempt_finished_at"),
            )
            .select_from(
                jobs.outerjoin(job_attempts, and_(_a.job_id == _j.id, _a.number == attempt))
            )
            .where(_j.id == job_id)
        )
        row = await self._one(statement)
        if row is None:
            return None
        tags = tuple(row.tags or ())
        if row.attempt_started_at is not None or row.attempt_finished_at is not None:
            started, finished = row.attempt_started_at, row.attempt_finished_at
        elif row.attempt == attempt:
            started, finished = row.started_at, row.finished_at
        else:
            started = finished = None
        return JobTiming(
            tags=tags, queued_at=row.queued_at, started_at=started, finished_at=finished
        )

    async def build_timing(self, build_id: str) -> BuildTiming | None:
        row = await self._one(_BUILD_TIMING.where(builds.c.id == build_id))
        if row is None:
            return None
        return BuildTiming(
            created_at=row.created_at, started_at=row.started_at, finished_at=row.finished_at
        )

    async def snapshot(self, now: datetime, online_since: datetime) -> SystemSnapshot:
        try:
            async with self._engine.connect() as conn:
                return await _snapshot(conn, now, online_since)
        except SQLAlchemyError as exc:
            raise_storage_error(exc)

    async def _one(self, statement: Any) -> Any:
        try:
            async with self._engine.connect() as conn:
                return (await conn.execute(statement)).first()
        except SQLAlchemyError as exc:
            raise_storage_error(exc)


async def _snapshot(conn: AsyncConnection, now: datetime, online_since: datetime) -> SystemSnapshot:
    async def rows(statement: Any) -> list[Any]:
        return list((await conn.execute(statement)).all())

    build_counts = await rows(select(builds.c.status, func.count()).group_by(builds.c.status))
    job_counts = await rows(select(_j.status, func.count()).group_by(_j.status))
    pending_rows = await rows(
        select(_TAGS_TEXT, func.count())
        .where(_j.status == JobStatus.PENDING.value)
        .group_by(_TAGS_TEXT)
    )
    online = _online(online_since)
    [agent_row] = await rows(
        select(func.count(), func.coalesce(func.sum(agents.c.capacity), 0)).where(online)
    )
    online_ids = select(agents.c.id).where(online)
    [used] = await rows(
        select(func.count()).where(
            _j.status == JobStatus.RUNNING.value, _j.agent_id.in_(online_ids.scalar_subquery())
        )
    )
    [outbox_row] = await rows(
        select(func.count(), func.min(outbox.c.created_at)).where(outbox.c.published_at.is_(None))
    )
    pending: Counter[str] = Counter()
    for tags_text, count in pending_rows:
        pending[label_set(json.loads(tags_text) if tags_text else ())] += count
    oldest: datetime | None = outbox_row[1]
    jobs_by_status = {str(status): int(count) for status, count in job_counts}
    return SystemSnapshot(
        builds={str(status): int(count) for status, count in build_counts},
        jobs=jobs_by_status,
        pending=dict(pending),
        running=jobs_by_status.get(JobStatus.RUNNING.value, 0),
        agents_online=agent_row[0],
        capacity_slots=int(agent_row[1]),
        used_slots=used[0],
        outbox_backlog=outbox_row[0],
        outbox_oldest_age=0.0 if oldest is None else max(0.0, (now - oldest).total_seconds()),
    )
