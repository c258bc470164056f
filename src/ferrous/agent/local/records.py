"""What a local run knows about each of its jobs, as it goes and once it is over."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

from ferrous.domain.progression import JobState
from ferrous.domain.statuses import BuildStatus, JobStatus, check_transition
from ferrous.pipeline_config.plan import JobSpec


@dataclass
class JobRecord:
    spec: JobSpec
    key: str
    log: Path
    artifacts: Path  # the archive its artifacts are kept in, once it has some
    status: JobStatus = JobStatus.CREATED
    failure_allowed: bool = False
    exit_code: int | None = None
    failure_reason: str | None = None
    attempts: int = 0
    coverage: float | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    due: float | None = None  # monotonic start time of a `when: delayed` job

    @property
    def name(self) -> str:
        return self.spec.name

    def move(self, status: JobStatus) -> None:
        """Change status through the domain's transition table: an illegal move raises."""
        check_transition(self.status, status)
        self.status = status

    def state(self) -> JobState:
        return JobState(self.status, self.failure_allowed)

    @property
    def duration(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


class RunResult(NamedTuple):
    status: BuildStatus
    jobs: tuple[JobRecord, ...]
    canceled: bool
    run_dir: Path
    duration: float

    @property
    def passed(self) -> bool:
        # A pipeline whose jobs were all left out by their rules ran nothing and failed nothing.
        return self.status in (BuildStatus.SUCCESS, BuildStatus.SKIPPED) and not self.canceled
