"""Test cases in memory, with the SQL adapter's order, totals and pages.

It reads builds and jobs (their names, the job duration history) from the ``InMemoryStore``
the units of work commit to, as the SQL adapter joins the jobs table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

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
from ferrous.domain.statuses import JobStatus
from ferrous.infrastructure.memory.store import InMemoryStore
from ferrous.reports.junit import TestCaseResult

MAX_PAGE = 1_000
RAN = frozenset({JobStatus.SUCCESS, JobStatus.FAILED, JobStatus.CANCELED})


@dataclass(frozen=True, slots=True, kw_only=True)
class _Stored:
    case: TestCaseResult
    job_id: str
    build_id: str
    project_id: str
    position: int
    test_key: str
    created_at: datetime
    sequence: int  # insertion order: ties of created_at, as the SQL adapter's ids


class InMemoryTestCaseStore:
    def __init__(self, store: InMemoryStore) -> None:
        self._store = store
        self._by_job: dict[str, list[_Stored]] = {}
        self._inserted = 0

    async def replace_job_cases(
        self,
        *,
        job_id: str,
        build_id: str,
        project_id: str,
        cases: Sequence[TestCaseResult],
        now: datetime,
    ) -> None:
        stored = []
        for position, case in enumerate(cases):
            self._inserted += 1
            stored.append(
                _Stored(
                    case=case,
                    job_id=job_id,
                    build_id=build_id,
                    project_id=project_id,
                    position=position,
                    test_key=key_of_test(case.suite, case.class_name, case.name),
                    created_at=now,
                    sequence=self._inserted,
                )
            )
        self._by_job[job_id] = stored

    async def build_report(
        self, build_id: str, *, limit: int = 100, offset: int = 0, status: str | None = None
    ) -> BuildReport:
        build = self._store.builds.get(build_id)
        if build is None:
            raise NotFound(f"no build {build_id}")
        limit = max(1, min(limit, MAX_PAGE))
        offset = max(0, offset)
        positions = {job.id: i for i, job in enumerate(build.jobs.values())}
        names = {job.id: job.name for job in build.jobs.values()}
        rows = [row for job_id in positions for row in self._by_job.get(job_id, [])]
        groups: dict[tuple[str, str], tuple[int, float | None]] = {}
        for row in rows:
            count, duration = groups.get((row.case.suite, row.case.status), (0, None))
            if row.case.duration is not None:
                duration = (duration or 0.0) + row.case.duration
            groups[row.case.suite, row.case.status] = (count + 1, duration)
        report = totals_of((suite, st, n, d) for (suite, st), (n, d) in groups.items())
        chosen = [row for row in rows if status is None or row.case.status == status]
        chosen.sort(
            key=lambda r: (
                0 if r.case.status in FAILED else 1,
                r.case.suite,
                r.case.class_name,
                r.case.name,
                positions[r.job_id],
                r.position,
            )
        )
        page = chosen[offset : offset + limit]
        return BuildReport(
            totals=report.totals,
            suites=report.suites,
            cases=[_view(row, names[row.job_id]) for row in page],
            next_offset=offset + limit if len(chosen) > offset + limit else None,
        )

    async def test_history(self, project_id: str, test_key: str, *, limit: int) -> list[CaseRun]:
        found = [
            row
            for rows in self._by_job.values()
            for row in rows
            if row.project_id == project_id and row.test_key == test_key
        ]
        found.sort(key=lambda row: (row.created_at, row.sequence), reverse=True)
        return [
            CaseRun(
                build_id=row.build_id,
                job_id=row.job_id,
                status=row.case.status,
                duration=row.case.duration,
                created_at=row.created_at,
            )
            for row in found[: max(1, limit)]
        ]

    async def job_history(self, project_id: str, job_name: str, *, limit: int) -> list[JobRun]:
        builds = sorted(
            (b for b in self._store.builds.values() if b.project_id == project_id),
            key=lambda b: (b.created_at, b.id),
            reverse=True,
        )
        runs = []
        for build in builds:
            job = build.jobs.get(job_name)
            if (
                job is None
                or job.status not in RAN
                or job.started_at is None
                or job.finished_at is None
            ):
                continue
            runs.append(
                JobRun(
                    build_id=build.id,
                    job_id=job.id,
                    status=job.status.value,
                    duration=(job.finished_at - job.started_at).total_seconds(),
                    finished_at=job.finished_at,
                )
            )
        return runs[: max(1, limit)]


def _view(row: _Stored, job_name: str) -> CaseView:
    case = row.case
    return CaseView(
        job_id=row.job_id,
        job_name=job_name,
        key=row.test_key,
        suite=case.suite,
        class_name=case.class_name,
        name=case.name,
        file=case.file,
        duration=case.duration,
        status=case.status,
        failure=case.failure,
    )
