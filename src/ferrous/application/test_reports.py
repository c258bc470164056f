"""Test reports: a job's JUnit files become stored test cases; a build's report, a test's
history and a job's duration history are read back.

The cases are kept apart from the units of work: a report can hold a hundred thousand
cases, written in a transaction of their own after the upload, and nothing in the build's
state machine depends on them. ``test_key`` (``key_of_test``) names a test across builds,
so its history (durations for ETAs, statuses for flaky tests) is one index walk.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

import structlog

from ferrous.reports.junit import TestCaseResult, parse_junit

log = structlog.get_logger(__name__)

#: all the cases one job keeps, over all its report files (each file: junit.MAX_CASES)
MAX_CASES_PER_JOB = 250_000
FAILED = frozenset({"failed", "error"})
STATUSES = ("passed", "failed", "error", "skipped")


def key_of_test(suite: str, class_name: str, name: str) -> str:
    """The ``test_key`` of a test: the same test in every build of a project."""
    return hashlib.sha256(f"{suite}\0{class_name}\0{name}".encode()).hexdigest()[:40]


@dataclass(frozen=True, slots=True, kw_only=True)
class TestReportSummary:
    """What an upload of JUnit files gave: the cases kept, how many failed (failures and
    errors), and what could not be read (each warning names its file)."""

    __test__ = False  # not a pytest test class, despite its name

    total: int
    failed: int
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class CaseView:
    job_id: str
    job_name: str
    key: str  # key_of_test: what a test's history is looked up by
    suite: str
    class_name: str
    name: str
    file: str | None
    duration: float | None
    status: str  # passed | failed | error | skipped
    failure: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class SuiteTotals:
    name: str
    total: int = 0
    passed: int = 0
    failed: int = 0
    errored: int = 0
    skipped: int = 0
    duration: float = 0.0  # the sum of its cases' durations, in seconds


@dataclass(frozen=True, slots=True, kw_only=True)
class BuildReport:
    """A build's test report: ``totals`` over all its jobs' cases (``name`` is ""), the
    suites by name, and one page of cases (failures and errors first); ``next_offset``
    is None on the last page."""

    totals: SuiteTotals
    suites: list[SuiteTotals]
    cases: list[CaseView] = field(default_factory=list)
    next_offset: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CaseRun:
    """One run of a test (its history)."""

    build_id: str
    job_id: str
    status: str
    duration: float | None
    created_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class JobRun:
    """One finished run of a job, by name (its duration history)."""

    build_id: str
    job_id: str
    status: str
    duration: float | None  # finished_at - started_at, in seconds
    finished_at: datetime


class TestCaseStore(Protocol):
    """Stored test cases. Each call runs in a transaction of its own."""

    async def replace_job_cases(
        self,
        *,
        job_id: str,
        build_id: str,
        project_id: str,
        cases: Sequence[TestCaseResult],
        now: datetime,
    ) -> None:
        """The job's cases become ``cases`` (in this order), all at once: a reader sees
        the old ones or the new ones. ``now`` is their ``created_at``."""
        ...

    async def build_report(
        self, build_id: str, *, limit: int = 100, offset: int = 0, status: str | None = None
    ) -> BuildReport:
        """Totals and suites over all the build's cases; the page of cases ``[offset,
        offset + limit)`` (only those of ``status`` when given), failures and errors first,
        then by suite, class and name. Raises NotFound for an unknown build."""
        ...

    async def test_history(self, project_id: str, test_key: str, *, limit: int) -> list[CaseRun]:
        """The test's last ``limit`` runs in the project's builds, newest first."""
        ...

    async def job_history(self, project_id: str, job_name: str, *, limit: int) -> list[JobRun]:
        """The last ``limit`` finished runs (success, failed, canceled, having started) of
        the jobs so named in the project's builds, newest build first."""
        ...


async def record_junit(
    store: TestCaseStore,
    *,
    job_id: str,
    build_id: str,
    project_id: str,
    files: Sequence[tuple[str, bytes]],
    now: datetime,
) -> TestReportSummary:
    """Parse a job's JUnit files (``(path, bytes)``) and store their cases in place of the
    job's earlier ones. Unreadable files are warnings, never errors: the upload that brought
    them succeeds. Parsing runs in a thread: a large report must not stall the server."""
    cases: list[TestCaseResult] = []
    warnings: list[str] = []
    for path, data in files:
        report = await asyncio.to_thread(parse_junit, data, file=path)
        warnings += report.warnings
        room = MAX_CASES_PER_JOB - len(cases)
        if len(report.cases) > room:
            cases += report.cases[:room]
            warnings.append(
                f"{path}: the job's reports hold more than {MAX_CASES_PER_JOB} test cases; "
                "the rest were left out"
            )
            break
        cases += report.cases
    await store.replace_job_cases(
        job_id=job_id, build_id=build_id, project_id=project_id, cases=cases, now=now
    )
    failed = sum(1 for case in cases if case.status in FAILED)
    log.info(
        "junit_recorded",
        job_id=job_id,
        build_id=build_id,
        files=len(files),
        total=len(cases),
        failed=failed,
        warnings=len(warnings),
    )
    return TestReportSummary(total=len(cases), failed=failed, warnings=tuple(warnings))


def totals_of(groups: Iterable[tuple[str, str, int, float | None]]) -> BuildReport:
    """The totals and per-suite totals of ``(suite, status, cases, duration)`` groups (as a
    ``GROUP BY suite, status`` gives them), suites by name; no cases."""
    suites: dict[str, dict[str, float]] = {}
    for suite, status, count, duration in groups:
        counts = suites.setdefault(suite, dict.fromkeys((*STATUSES, "duration"), 0))
        counts[status if status in STATUSES else "passed"] += count
        counts["duration"] += duration or 0.0
    by_suite = [_totals(name, counts) for name, counts in sorted(suites.items())]
    overall = dict.fromkeys((*STATUSES, "duration"), 0.0)
    for counts in suites.values():
        for key, value in counts.items():
            overall[key] += value
    return BuildReport(totals=_totals("", overall), suites=by_suite)


def _totals(name: str, counts: dict[str, float]) -> SuiteTotals:
    return SuiteTotals(
        name=name,
        total=int(sum(counts[status] for status in STATUSES)),
        passed=int(counts["passed"]),
        failed=int(counts["failed"]),
        errored=int(counts["error"]),
        skipped=int(counts["skipped"]),
        duration=counts["duration"],
    )
