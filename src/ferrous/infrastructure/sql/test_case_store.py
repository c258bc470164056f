"""Test cases on SQL: a job's cases replaced in one transaction of their own, reports read
with two aggregate queries and a page.

Writes go through ``write_transaction`` (on SQLite: behind the write gate, like every
writer), the old rows deleted and the new ones inserted in batches of executemany, so a
reader sees a job's old cases or its new ones, never a mix. Names sort by code point on
both databases (PostgreSQL's ``C`` collation, SQLite's binary one), as the memory adapter
sorts them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    bindparam,
    case,
    delete,
    func,
    insert,
    select,
)
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from ferrous.application.test_reports import (
    FAILED,
    BuildReport,
    CaseRun,
    CaseView,
    JobRun,
    key_of_test,
    totals_of,
)
from ferrous.domain.errors import NotFound
from ferrous.domain.ids import new_id
from ferrous.domain.statuses import JobStatus
from ferrous.infrastructure.sql.schema import builds, jobs
from ferrous.infrastructure.sql.schema import test_cases as t
from ferrous.infrastructure.sql.session import raise_storage_error, write_transaction
from ferrous.reports.junit import TestCaseResult

BATCH = 5_000  # rows per executemany
MAX_PAGE = 1_000
#: jobs whose run counts in their duration history
RAN = [JobStatus.SUCCESS.value, JobStatus.FAILED.value, JobStatus.CANCELED.value]

_DELETE = delete(t).where(t.c.job_id == bindparam("job_id"))
_INSERT = insert(t)
_BUILD = select(builds.c.id).where(builds.c.id == bindparam("build_id"))
_GROUPS = (
    select(t.c.suite, t.c.status, func.count(), func.sum(t.c.duration))
    .where(t.c.build_id == bindparam("build_id"))
    .group_by(t.c.suite, t.c.status)
)
_CASES = select(
    t.c.job_id,
    jobs.c.name.label("job_name"),
    t.c.test_key.label("key"),
    t.c.suite,
    t.c.class_name,
    t.c.name,
    t.c.file,
    t.c.duration,
    t.c.status,
    t.c.failure,
).join(jobs, jobs.c.id == t.c.job_id)
_FAILED_FIRST = case((t.c.status.in_(sorted(FAILED)), 0), else_=1)
_HISTORY = (
    select(t.c.build_id, t.c.job_id, t.c.status, t.c.duration, t.c.created_at)
    .where(t.c.project_id == bindparam("project_id"), t.c.test_key == bindparam("test_key"))
    .order_by(t.c.created_at.desc(), t.c.id.desc())
    .limit(bindparam("limit"))
)
# newest builds first: walks ix_builds_project_id_created_at_id and each build's jobs
_JOB_HISTORY = (
    select(jobs.c.build_id, jobs.c.id, jobs.c.status, jobs.c.started_at, jobs.c.finished_at)
    .join(builds, builds.c.id == jobs.c.build_id)
    .where(
        builds.c.project_id == bindparam("project_id"),
        jobs.c.name == bindparam("name"),
        jobs.c.status.in_(RAN),
        jobs.c.started_at.is_not(None),
        jobs.c.finished_at.is_not(None),
    )
    .order_by(builds.c.created_at.desc(), builds.c.id.desc(), jobs.c.finished_at.desc())
    .limit(bindparam("limit"))
)


def _row(
    case_: TestCaseResult,
    position: int,
    *,
    job_id: str,
    build_id: str,
    project_id: str,
    now: datetime,
) -> dict[str, Any]:
    return {
        "id": new_id(),
        "job_id": job_id,
        "build_id": build_id,
        "project_id": project_id,
        "position": position,
        "suite": case_.suite,
        "class_name": case_.class_name,
        "name": case_.name,
        "file": case_.file,
        "duration": case_.duration,
        "status": case_.status,
        "failure": case_.failure,
        "test_key": key_of_test(case_.suite, case_.class_name, case_.name),
        "created_at": now,
    }


class SqlTestCaseStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        postgres = engine.dialect.name == "postgresql"

        def by_code_point(column: ColumnElement[str]) -> ColumnElement[str]:
            return column.collate("C") if postgres else column

        self._case_order = (
            _FAILED_FIRST,
            by_code_point(t.c.suite),
            by_code_point(t.c.class_name),
            by_code_point(t.c.name),
            jobs.c.position,
            t.c.position,
        )

    async def replace_job_cases(
        self,
        *,
        job_id: str,
        build_id: str,
        project_id: str,
        cases: Sequence[TestCaseResult],
        now: datetime,
    ) -> None:
        async with write_transaction(self._engine) as conn:
            try:
                await conn.execute(_DELETE, {"job_id": job_id})
                for start in range(0, len(cases), BATCH):
                    batch = cases[start : start + BATCH]
                    rows = [
                        _row(
                            c,
                            start + i,
                            job_id=job_id,
                            build_id=build_id,
                            project_id=project_id,
                            now=now,
                        )
                        for i, c in enumerate(batch)
                    ]
                    await conn.execute(_INSERT, rows)
            except SQLAlchemyError as exc:
                raise_storage_error(exc)

    async def build_report(
        self, build_id: str, *, limit: int = 100, offset: int = 0, status: str | None = None
    ) -> BuildReport:
        limit = max(1, min(limit, MAX_PAGE))
        offset = max(0, offset)
        params = {"build_id": build_id}
        page = _CASES.where(t.c.build_id == build_id)
        if status is not None:
            page = page.where(t.c.status == status)
        page = page.order_by(*self._case_order).limit(limit + 1).offset(offset)
        try:
            async with self._engine.connect() as conn:
                if (await conn.execute(_BUILD, params)).first() is None:
                    raise NotFound(f"no build {build_id}")
                groups = (await conn.execute(_GROUPS, params)).all()
                rows = (await conn.execute(page)).all() if groups else []
        except SQLAlchemyError as exc:
            raise_storage_error(exc)
        report = totals_of((g[0], g[1], int(g[2]), g[3]) for g in groups)
        cases = [CaseView(**row._mapping) for row in rows[:limit]]
        next_offset = offset + limit if len(rows) > limit else None
        return BuildReport(
            totals=report.totals, suites=report.suites, cases=cases, next_offset=next_offset
        )

    async def test_history(self, project_id: str, test_key: str, *, limit: int) -> list[CaseRun]:
        params = {"project_id": project_id, "test_key": test_key, "limit": max(1, limit)}
        rows = await self._rows(_HISTORY, params)
        return [CaseRun(**row._mapping) for row in rows]

    async def job_history(self, project_id: str, job_name: str, *, limit: int) -> list[JobRun]:
        params = {"project_id": project_id, "name": job_name, "limit": max(1, limit)}
        rows = await self._rows(_JOB_HISTORY, params)
        return [
            JobRun(
                build_id=row.build_id,
                job_id=row.id,
                status=row.status,
                duration=(row.finished_at - row.started_at).total_seconds(),
                finished_at=row.finished_at,
            )
            for row in rows
        ]

    async def _rows(self, statement: Any, params: dict[str, Any]) -> list[Any]:
        try:
            async with self._engine.connect() as conn:
                return list((await conn.execute(statement, params)).all())
        except SQLAlchemyError as exc:
            raise_storage_error(exc)
