"""Commit status reports: queued by the unit of work's commit, sent and settled by the sender.

``queue_build_reports`` runs inside ``SqlUnitOfWork.commit``, in the transaction that saved
the builds, so a committed state change always has its report and a crash loses none. It is
one ``INSERT ... SELECT`` per build, joined with the project (no row when the project has no
forge) and the pipeline (the context's name), which skips the insert when the build's newest
report already says the same: the jobs of a running build do not queue "running" again and
again.

The sender is a singleton, so ``due`` does not lock: it reads the due reports with their
projects' forges and, when there are some, settles the superseded ones and reads again.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Row,
    bindparam,
    delete,
    exists,
    func,
    insert,
    literal,
    select,
    update,
)

from ferrous.domain.build import Build
from ferrous.domain.commit_status import (
    CONTEXT_PREFIX,
    CommitState,
    CommitStatus,
    DueReport,
    ReportOutcome,
    ReportResult,
    build_report,
)
from ferrous.infrastructure.sql.project_repository import forge_of_row
from ferrous.infrastructure.sql.schema import builds, pipelines, projects, status_reports
from ferrous.infrastructure.sql.session import SqlSession

_newest = status_reports.alias("newest")
_NEWEST_ID = (
    select(func.max(_newest.c.id))
    .where(_newest.c.build_id == bindparam("build_id"), _newest.c.job_id.is_(None))
    .scalar_subquery()
)
_SAME_AS_NEWEST = exists().where(
    status_reports.c.id == _NEWEST_ID,
    status_reports.c.state == bindparam("state"),
    status_reports.c.description == bindparam("description"),
)
_QUEUE = insert(status_reports).from_select(
    [
        "project_id",
        "build_id",
        "sha",
        "ref",
        "context",
        "state",
        "description",
        "created_at",
        "attempts",
        "next_attempt_at",
    ],
    select(
        builds.c.project_id,
        builds.c.id,
        builds.c.sha,
        builds.c.ref,
        literal(CONTEXT_PREFIX) + pipelines.c.name,
        bindparam("state"),
        bindparam("description"),
        bindparam("now", type_=status_reports.c.created_at.type),
        literal(0),
        bindparam("now", type_=status_reports.c.created_at.type),
    )
    .select_from(
        builds.join(projects, projects.c.id == builds.c.project_id).join(
            pipelines, pipelines.c.id == builds.c.pipeline_id
        )
    )
    .where(builds.c.id == bindparam("build_id"), projects.c.forge.is_not(None), ~_SAME_AS_NEWEST),
)

_newer = status_reports.alias("newer")
_SUPERSEDE = (
    update(status_reports)
    .where(
        status_reports.c.next_attempt_at.is_not(None),
        exists().where(
            _newer.c.project_id == status_reports.c.project_id,
            _newer.c.sha == status_reports.c.sha,
            _newer.c.context == status_reports.c.context,
            _newer.c.id > status_reports.c.id,
        ),
    )
    .values(next_attempt_at=None, outcome=ReportOutcome.SUPERSEDED.value)
)
_DUE = (
    select(
        status_reports,
        projects.c.repo_url,
        projects.c.forge,
        projects.c.forge_api_url,
        projects.c.forge_repo,
        projects.c.forge_token,
    )
    .join(projects, projects.c.id == status_reports.c.project_id)
    .where(status_reports.c.next_attempt_at <= bindparam("now", type_=projects.c.created_at.type))
    .order_by(status_reports.c.next_attempt_at, status_reports.c.id)
    .limit(bindparam("limit"))
)
_SETTLE = (
    update(status_reports)
    .where(status_reports.c.id == bindparam("report_id"))
    .values(
        attempts=bindparam("b_attempts"),
        next_attempt_at=bindparam("b_next_attempt_at"),
        outcome=bindparam("b_outcome"),
        sent_at=bindparam("b_sent_at"),
        last_error=bindparam("b_last_error"),
        target_url=bindparam("b_target_url"),
    )
)


async def queue_build_reports(session: SqlSession, changed: Sequence[Build], now: datetime) -> None:
    """Queue the status of each build, unless its newest report says the same already."""
    params = []
    for build in changed:
        report = build_report(build)
        params.append(
            {
                "build_id": build.id,
                "state": report.state.value,
                "description": report.description,
                "now": now,
            }
        )
    if params:
        await session.execute_write(_QUEUE, params)


def _due(row: Row[Any]) -> DueReport:
    return DueReport(
        id=row.id,
        project_id=row.project_id,
        build_id=row.build_id,
        status=CommitStatus(
            sha=row.sha,
            ref=row.ref,
            state=CommitState(row.state),
            context=row.context,
            description=row.description,
            target_url="",
        ),
        attempts=row.attempts,
        repo_url=row.repo_url,
        forge=forge_of_row(row),
    )


class SqlStatusReportRepository:
    def __init__(self, session: SqlSession) -> None:
        self._session = session

    async def due(self, now: datetime, limit: int) -> list[DueReport]:
        """Reads first: most passes find nothing due and then write nothing (on SQLite a
        write would take the database's one write lock)."""
        params = {"now": now, "limit": limit}
        rows = list(await self._session.execute(_DUE, params))
        if rows and await self._session.execute_write(_SUPERSEDE):
            rows = list(await self._session.execute(_DUE, params, write=True))
        return [_due(row) for row in rows]

    async def settle(self, results: Sequence[ReportResult]) -> None:
        if not results:
            return
        await self._session.execute_write(
            _SETTLE,
            [
                {
                    "report_id": r.report_id,
                    "b_attempts": r.attempts,
                    "b_next_attempt_at": r.next_attempt_at if r.outcome is None else None,
                    "b_outcome": r.outcome.value if r.outcome is not None else None,
                    "b_sent_at": r.at if r.outcome is ReportOutcome.SENT else None,
                    "b_last_error": r.error,
                    "b_target_url": r.target_url,
                }
                for r in results
            ],
        )

    async def prune(self, before: datetime) -> int:
        return await self._session.execute_write(
            delete(status_reports).where(
                status_reports.c.next_attempt_at.is_(None), status_reports.c.created_at < before
            )
        )
