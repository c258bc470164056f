"""In-memory commit status reports, with the SQL adapter's rules: queued at commit for each
build whose state changed (unless its newest report says the same), superseded by a newer
report for the same project, commit and context, settled by the sender on commit."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from ferrous.domain.build import Build
from ferrous.domain.commit_status import (
    CommitState,
    CommitStatus,
    DueReport,
    ReportOutcome,
    ReportResult,
    build_context,
    build_report,
)
from ferrous.infrastructure.memory.store import InMemoryStore


@dataclass(eq=False, kw_only=True)
class StoredReport:
    """One row of the SQL ``status_reports`` table."""

    id: int
    project_id: str
    build_id: str
    sha: str
    ref: str
    context: str
    state: CommitState
    description: str
    created_at: datetime
    attempts: int = 0
    next_attempt_at: datetime | None = None
    outcome: ReportOutcome | None = None
    sent_at: datetime | None = None
    last_error: str | None = None
    target_url: str | None = None

    def key(self) -> tuple[str, str, str]:
        return (self.project_id, self.sha, self.context)


def queue_build_reports(store: InMemoryStore, changed: Sequence[Build], now: datetime) -> None:
    """Called by the unit of work's commit, once the builds are in ``store``."""
    for build in changed:
        project = store.projects.get(build.project_id)
        pipeline = store.pipelines.get(build.pipeline_id)
        if project is None or project.forge is None or pipeline is None:
            continue
        report = build_report(build)
        newest = next((r for r in reversed(store.status_reports) if r.build_id == build.id), None)
        if newest and (newest.state, newest.description) == (report.state, report.description):
            continue
        store.status_reports.append(
            StoredReport(
                id=(store.status_reports[-1].id + 1) if store.status_reports else 1,
                project_id=build.project_id,
                build_id=build.id,
                sha=build.sha,
                ref=build.ref,
                context=build_context(pipeline.name),
                state=report.state,
                description=report.description,
                created_at=now,
                next_attempt_at=now,
            )
        )


class InMemoryStatusReportRepository:
    """Changes are staged and applied by the unit of work's commit, like the SQL ones."""

    def __init__(self, store: InMemoryStore) -> None:
        self._store = store
        self._superseded: list[StoredReport] = []
        self._settled: list[tuple[StoredReport, ReportResult]] = []
        self._pruned: set[int] = set()

    async def due(self, now: datetime, limit: int) -> list[DueReport]:
        reports = self._store.status_reports
        newest: dict[tuple[str, str, str], int] = {}
        for report in reports:
            newest[report.key()] = max(newest.get(report.key(), 0), report.id)
        unsettled = [r for r in reports if r.next_attempt_at is not None]
        self._superseded += [r for r in unsettled if newest[r.key()] != r.id]
        due = [
            r
            for r in unsettled
            if newest[r.key()] == r.id
            and r.next_attempt_at is not None
            and r.next_attempt_at <= now
        ]
        due.sort(key=lambda r: (r.next_attempt_at or now, r.id))
        return [self._due(r) for r in due[:limit]]

    def _due(self, report: StoredReport) -> DueReport:
        project = self._store.projects[report.project_id]
        return DueReport(
            id=report.id,
            project_id=report.project_id,
            build_id=report.build_id,
            status=CommitStatus(
                sha=report.sha,
                ref=report.ref,
                state=report.state,
                context=report.context,
                description=report.description,
                target_url="",
            ),
            attempts=report.attempts,
            repo_url=project.repo_url,
            forge=project.forge,
        )

    async def settle(self, results: Sequence[ReportResult]) -> None:
        by_id = {r.id: r for r in self._store.status_reports}
        self._settled += [(by_id[r.report_id], r) for r in results if r.report_id in by_id]

    async def prune(self, before: datetime) -> int:
        old = {
            r.id
            for r in self._store.status_reports
            if r.next_attempt_at is None and r.created_at < before
        }
        self._pruned |= old
        return len(old)

    def apply(self) -> None:
        """On commit (no await in between)."""
        for report in self._superseded:
            _supersede(report)
        for report, result in self._settled:
            _settle(report, result)
        if self._pruned:
            kept = [r for r in self._store.status_reports if r.id not in self._pruned]
            self._store.status_reports[:] = kept
        self._superseded, self._settled, self._pruned = [], [], set()


def _supersede(report: StoredReport) -> None:
    report.next_attempt_at = None
    report.outcome = ReportOutcome.SUPERSEDED


def _settle(report: StoredReport, result: ReportResult) -> None:
    report.attempts = result.attempts
    report.outcome = result.outcome
    report.next_attempt_at = result.next_attempt_at if result.outcome is None else None
    report.sent_at = result.at if result.outcome is ReportOutcome.SENT else None
    report.last_error = result.error
    report.target_url = result.target_url
