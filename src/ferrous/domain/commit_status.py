"""Commit statuses: what a build tells the forge about its commit, and how that is tracked.

One status per build, under the context ``ferrous/<pipeline>``: the forge shows one line per
pipeline of the project, which moves from pending to running to the result. (Per-job
statuses would flood a pull request of a matrix build; the build page links to the jobs.)

A status report is queued in the same transaction as the build's state change (the unit of
work writes it next to the outbox events), so a committed change always has its report; a
sender sends the queued reports later, retrying with backoff. Of several unsent reports for
one commit and context only the newest is sent: the forge shows the newest state anyway.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from ferrous.domain.build import Build
from ferrous.domain.errors import FerrousError
from ferrous.domain.forge import ForgeLink
from ferrous.domain.statuses import BuildStatus

CONTEXT_PREFIX = "ferrous/"


class CommitState(StrEnum):
    """The forge-neutral state; each forge's client maps it to its own words."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"
    CANCELED = "canceled"
    SKIPPED = "skipped"


_STATE = {
    BuildStatus.CREATED: CommitState.PENDING,
    BuildStatus.PENDING: CommitState.PENDING,
    BuildStatus.MANUAL: CommitState.PENDING,
    BuildStatus.SCHEDULED: CommitState.PENDING,
    BuildStatus.WAITING: CommitState.PENDING,
    BuildStatus.RUNNING: CommitState.RUNNING,
    BuildStatus.SUCCESS: CommitState.SUCCESS,
    BuildStatus.FAILED: CommitState.FAILED,
    BuildStatus.CANCELED: CommitState.CANCELED,
    BuildStatus.SKIPPED: CommitState.SKIPPED,
}
_WORDS = {
    BuildStatus.CREATED: "is pending",
    BuildStatus.PENDING: "is pending",
    BuildStatus.MANUAL: "waits for a manual job",
    BuildStatus.SCHEDULED: "waits for a delayed job",
    BuildStatus.WAITING: "waits for a resource group",
    BuildStatus.RUNNING: "is running",
    BuildStatus.SUCCESS: "succeeded",
    BuildStatus.FAILED: "failed",
    BuildStatus.CANCELED: "was canceled",
    BuildStatus.SKIPPED: "was skipped",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class BuildReport:
    """What a build's current status says on the forge."""

    build_id: str
    state: CommitState
    description: str  # at most 140 characters (GitHub's limit)


def build_report(build: Build) -> BuildReport:
    return BuildReport(
        build_id=build.id,
        state=_STATE[build.status],
        description=f"Build #{build.number} {_WORDS[build.status]}",
    )


def build_context(pipeline_name: str) -> str:
    return CONTEXT_PREFIX + pipeline_name


class ReportOutcome(StrEnum):
    SENT = "sent"
    SUPERSEDED = "superseded"  # a newer report for the same commit and context came
    GIVEN_UP = "given_up"  # refused by the forge, or too many failed attempts


@dataclass(frozen=True, slots=True, kw_only=True)
class CommitStatus:
    """One status as forges take it."""

    sha: str
    ref: str
    state: CommitState
    context: str
    description: str
    target_url: str


@dataclass(frozen=True, slots=True, kw_only=True)
class DueReport:
    """A queued report whose time to be sent has come, with its project's forge."""

    id: int
    project_id: str
    build_id: str
    status: CommitStatus  # ``target_url`` empty: the sender knows the server's URL
    attempts: int  # failed attempts so far
    repo_url: str
    forge: ForgeLink | None  # None: the project no longer reports to a forge


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportResult:
    """What became of one attempt to send a report."""

    report_id: int
    attempts: int  # including this one
    at: datetime
    outcome: ReportOutcome | None  # None: try again at ``next_attempt_at``
    next_attempt_at: datetime | None = None
    error: str | None = None
    target_url: str | None = None


class StatusNotDelivered(FerrousError):
    """The forge did not take the commit status."""

    def __init__(self, message: str, *, retryable: bool, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after  # seconds the forge asked us to wait
