"""Job and build statuses, and the one table of legal job status moves.

The server, the agents and ``ferrous run`` all move jobs through these statuses; one table means
an illegal move (say, a finished job going back to running) raises instead of silently
corrupting a build.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from ferrous.domain.errors import InvalidTransition


class When(StrEnum):
    ON_SUCCESS = "on_success"
    ON_FAILURE = "on_failure"
    ALWAYS = "always"
    MANUAL = "manual"
    DELAYED = "delayed"
    NEVER = "never"


class JobStatus(StrEnum):
    CREATED = "created"
    PENDING = "pending"
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"
    CANCELED = "canceled"
    SKIPPED = "skipped"
    MANUAL = "manual"  # waiting for a person to play it
    SCHEDULED = "scheduled"  # `when: delayed`, waiting for its start time
    WAITING = "waiting"  # waiting for its resource group

    @property
    def is_finished(self) -> bool:
        return self in FINISHED_STATUSES


class BuildStatus(StrEnum):
    CREATED = "created"
    PENDING = "pending"
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"
    CANCELED = "canceled"
    SKIPPED = "skipped"
    MANUAL = "manual"  # blocked on a manual job that must be played
    SCHEDULED = "scheduled"  # waiting for a `when: delayed` job's start time
    WAITING = "waiting"  # waiting for a resource group

    @property
    def is_finished(self) -> bool:
        return self in {
            BuildStatus.SUCCESS,
            BuildStatus.FAILED,
            BuildStatus.CANCELED,
            BuildStatus.SKIPPED,
        }


FINISHED_STATUSES: Final = frozenset(
    {JobStatus.SUCCESS, JobStatus.FAILED, JobStatus.CANCELED, JobStatus.SKIPPED}
)

_S = JobStatus
#: Legal moves. Retrying a job creates a new attempt rather than moving a finished job back.
#: The one way back is ``skipped -> created``: when a person plays a manual job or retries one,
#: the skipped jobs after it are processed again (GitLab's ``process`` event, used by
#: ``Ci::ResetSkippedJobsService``; see ``progression.reset_skipped``).
JOB_TRANSITIONS: Final[dict[JobStatus, frozenset[JobStatus]]] = {
    _S.CREATED: frozenset(
        {_S.PENDING, _S.SKIPPED, _S.MANUAL, _S.SCHEDULED, _S.WAITING, _S.CANCELED}
    ),
    _S.WAITING: frozenset({_S.PENDING, _S.CANCELED, _S.SKIPPED}),
    _S.MANUAL: frozenset({_S.PENDING, _S.WAITING, _S.CANCELED, _S.SKIPPED}),
    _S.SCHEDULED: frozenset({_S.PENDING, _S.WAITING, _S.MANUAL, _S.CANCELED, _S.SKIPPED}),
    _S.PENDING: frozenset({_S.RUNNING, _S.CANCELED, _S.FAILED, _S.PENDING}),
    _S.RUNNING: frozenset({_S.SUCCESS, _S.FAILED, _S.CANCELED, _S.PENDING}),
    _S.SUCCESS: frozenset(),
    _S.FAILED: frozenset(),
    _S.CANCELED: frozenset(),
    _S.SKIPPED: frozenset({_S.CREATED}),
}


def check_transition(current: JobStatus, new: JobStatus) -> None:
    """Raise InvalidTransition unless ``current -> new`` is in the table."""
    if new not in JOB_TRANSITIONS[current]:
        raise InvalidTransition(f"a job cannot go from {current} to {new}")
