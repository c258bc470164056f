"""Drive a pipeline through the progression rules the way the Build aggregate does.

Every status change goes through ``check_transition``, so the scenarios also prove that the
transition table allows every move GitLab's processing makes.
"""

from __future__ import annotations

from collections.abc import Iterable

from ferrous.domain.progression import (
    JobNode,
    JobState,
    advance,
    build_status,
    reset_skipped,
)
from ferrous.domain.statuses import BuildStatus, JobStatus, When, check_transition

S = JobStatus


def job(
    name: str,
    stage: int = 0,
    *,
    when: When = When.ON_SUCCESS,
    needs: Iterable[str] | None = None,
    allow_failure: bool | None = None,
) -> JobNode:
    """A job node; as in GitLab, ``when: manual`` defaults to ``allow_failure: true``."""
    return JobNode(
        name=name,
        stage_index=stage,
        when=when,
        needs=None if needs is None else tuple(needs),
        allow_failure=(when == When.MANUAL) if allow_failure is None else allow_failure,
    )


def parse_statuses(text: str) -> dict[str, JobStatus]:
    """``"build=success test=skipped"`` -> ``{"build": success, "test": skipped}``."""
    pairs = (item.split("=") for item in text.split())
    return {name: JobStatus(status) for name, status in pairs}


class Run:
    """A build in progress: nodes, their states, and the moves people and agents make."""

    def __init__(self, jobs: Iterable[JobNode]) -> None:
        self.nodes = {node.name: node for node in jobs}
        # `when: never` jobs get no state at all: progression must not look at them.
        self.states = {
            name: JobState(S.CREATED)
            for name, node in self.nodes.items()
            if node.when != When.NEVER
        }
        self.build = BuildStatus.CREATED

    def start(self) -> Run:
        """Process the new build once, as GitLab does right after creating a pipeline."""
        self.advance()
        return self

    def status_of(self, name: str) -> JobStatus:
        return self.states[name].status

    def statuses(self) -> dict[str, JobStatus]:
        return {name: state.status for name, state in self.states.items()}

    def set(self, name: str, status: JobStatus, *, failure_allowed: bool = False) -> None:
        check_transition(self.status_of(name), status)
        self.states[name] = JobState(status, failure_allowed)

    def advance(self) -> dict[str, JobStatus]:
        """Apply ``advance``, then update the build status from the previous one."""
        changes = advance(self.nodes, self.states)
        for name, status in changes.items():
            self.set(name, status)
        self.build = build_status(self.nodes.values(), self.states, previous=self.build)
        return changes

    # The events of GitLab's processing test cases; each one is followed by processing.

    def run(self, *names: str) -> None:
        for name in names:
            self.set(name, S.RUNNING)
        self.advance()

    def finish(self, name: str, status: JobStatus, *, failure_allowed: bool = False) -> None:
        """End a job; a pending one is claimed by an agent first."""
        if self.status_of(name) == S.PENDING and status in (S.SUCCESS, S.FAILED):
            self.set(name, S.RUNNING)
        self.set(name, status, failure_allowed=failure_allowed)

    def succeed(self, *names: str) -> None:
        for name in names:
            self.finish(name, S.SUCCESS)
        self.advance()

    def fail(self, *names: str, failure_allowed: bool | None = None) -> None:
        """Fail jobs; by default the failure is allowed when the job has ``allow_failure``."""
        for name in names:
            allowed = self.nodes[name].allow_failure if failure_allowed is None else failure_allowed
            self.finish(name, S.FAILED, failure_allowed=allowed)
        self.advance()

    def cancel(self, *names: str) -> None:
        for name in names:
            self.finish(name, S.CANCELED)
        self.advance()

    def play(self, *names: str) -> None:
        for name in names:
            self.set(name, S.PENDING)
        self._reset(names)

    def retry(self, *names: str) -> None:
        """Retry finished jobs: each gets a new attempt, so no transition of the old one."""
        for name in names:
            assert self.status_of(name).is_finished
            self.states[name] = JobState(S.PENDING)
        self._reset(names)

    def _reset(self, names: Iterable[str]) -> None:
        for name, status in reset_skipped(self.nodes, self.states, names).items():
            self.set(name, status)
        self.advance()
