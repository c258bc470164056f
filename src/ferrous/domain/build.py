"""The Build aggregate: one run of a pipeline at a commit, its jobs and their attempts.

Every status change of a build or its jobs goes through here, so the invariants hold in one
place: moves follow the transition table, a job's result is accepted once per attempt,
retries follow the job's ``retry`` policy, and what runs next is decided by
``progression`` exactly as ``ferrous run`` decides it. The aggregate records events; the unit
of work stores them in the outbox in the same transaction as the state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ferrous.domain.auto_cancel import AutoCancel
from ferrous.domain.errors import Conflict, InvalidTransition, NotFound
from ferrous.domain.events import (
    BuildCompleted,
    BuildCreated,
    BuildStarted,
    Event,
    JobCancelRequested,
    JobCompleted,
    JobQueued,
    JobStarted,
)
from ferrous.domain.ids import new_id
from ferrous.domain.phases import Phase, checked_phases
from ferrous.domain.progression import (
    JobNode,
    JobState,
    advance,
    build_status,
    reset_skipped,
    upstream_status,
)
from ferrous.domain.ref_kind import RefKind
from ferrous.domain.statuses import BuildStatus, JobStatus, When, check_transition

#: Failure reasons, as GitLab names them (`retry:when` matches on these).
SCRIPT_FAILURE = "script_failure"
TIMEOUT_FAILURE = "job_execution_timeout"
RUNNER_SYSTEM_FAILURE = "runner_system_failure"
UNKNOWN_FAILURE = "unknown_failure"


@dataclass(frozen=True, slots=True, kw_only=True)
class JobDefinition:
    """What the aggregate must know of a job to decide its fate; the rest is in ``spec``."""

    name: str
    stage: str
    stage_index: int
    when: When
    needs: tuple[str, ...] | None
    allow_failure: bool
    allow_failure_exit_codes: tuple[int, ...] = ()
    retry_max: int = 0
    retry_when: tuple[str, ...] = ("always",)
    retry_exit_codes: tuple[int, ...] = ()
    tags: tuple[str, ...] = ()
    timeout: int | None = None
    start_in: int | None = None
    interruptible: bool = False

    def node(self) -> JobNode:
        return JobNode(
            name=self.name,
            stage_index=self.stage_index,
            when=self.when,
            needs=self.needs,
            allow_failure=self.allow_failure,
        )

    def failure_allowed(self, exit_code: int | None) -> bool:
        if self.allow_failure_exit_codes:
            return exit_code in self.allow_failure_exit_codes
        return self.allow_failure

    def earns_retry(self, attempt: int, reason: str, exit_code: int | None) -> bool:
        if attempt > self.retry_max:
            return False
        if self.retry_exit_codes and exit_code not in self.retry_exit_codes:
            return False
        return "always" in self.retry_when or reason in self.retry_when


@dataclass(slots=True, kw_only=True)
class Attempt:
    """One finished try of a job, kept for its history."""

    number: int
    status: JobStatus
    agent_id: str | None
    exit_code: int | None
    failure_reason: str | None
    started_at: datetime | None
    finished_at: datetime | None
    phases: tuple[Phase, ...] = ()  # as its agent measured them (for traces)


@dataclass(slots=True, kw_only=True)
class Job:
    id: str
    build_id: str
    definition: JobDefinition
    #: the plan's JobSpec as JSON: what the agent runs. Set when the build is created; a
    #: stored build is loaded without it (only the claiming agent needs it).
    spec: dict[str, Any] | None = None
    status: JobStatus = JobStatus.CREATED
    attempt: int = 0  # the current (or last) attempt; 0 before the first start
    failure_allowed: bool = False
    agent_id: str | None = None
    exit_code: int | None = None
    failure_reason: str | None = None
    queued_at: datetime | None = None
    scheduled_for: datetime | None = None  # when a `when: delayed` job starts
    started_at: datetime | None = None
    finished_at: datetime | None = None
    #: percent, from the finished attempt's log by its `coverage:` regex (the agent reads it)
    coverage: float | None = None
    history: list[Attempt] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.definition.name

    def move(self, status: JobStatus) -> None:
        check_transition(self.status, status)
        self.status = status


@dataclass(slots=True, kw_only=True)
class Build:
    id: str
    project_id: str
    pipeline_id: str
    number: int
    ref: str
    sha: str
    source: str
    status: BuildStatus
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    variables: dict[str, str] = field(default_factory=dict)  # given with the trigger
    problems: list[dict[str, Any]] = field(default_factory=list)  # lint problems
    failure_reason: str | None = None
    jobs: dict[str, Job] = field(default_factory=dict)  # by name, in plan order
    schedule_id: str | None = None  # the schedule that started it (source "schedule")
    #: its ``workflow:auto_cancel:on_new_commit``: what a newer build of its ref may cancel
    auto_cancel: AutoCancel = AutoCancel.CONSERVATIVE
    #: its ref was protected when it was created (a tag, or the default branch reached by
    #: its own name): its jobs get the protected secret variables
    protected_ref: bool = False
    ref_kind: RefKind = RefKind.BRANCH  # what ``ref`` names
    #: it reached success once; a retry running or failing since does not take that back
    #: (GitLab's artifact lock: kept until a newer build of its ref succeeds)
    has_succeeded: bool = False
    version: int = 0  # optimistic concurrency: bumped on every save
    events: list[Event] = field(default_factory=list)

    @classmethod
    def create(
        cls,
        *,
        project_id: str,
        pipeline_id: str,
        number: int,
        ref: str,
        sha: str,
        source: str,
        variables: dict[str, str],
        jobs: list[tuple[JobDefinition, dict[str, Any]]],
        problems: list[dict[str, Any]],
        now: datetime,
        schedule_id: str | None = None,
        auto_cancel: AutoCancel = AutoCancel.CONSERVATIVE,
        protected_ref: bool = False,
        ref_kind: RefKind = RefKind.BRANCH,
    ) -> Build:
        """A new build; with no job (a config error, or rules left nothing) it is finished."""
        build = cls(
            id=new_id(),
            project_id=project_id,
            pipeline_id=pipeline_id,
            number=number,
            ref=ref,
            sha=sha,
            source=source,
            status=BuildStatus.CREATED,
            created_at=now,
            variables=dict(variables),
            problems=list(problems),
            schedule_id=schedule_id,
            auto_cancel=auto_cancel,
            protected_ref=protected_ref,
            ref_kind=ref_kind,
        )
        for definition, spec in jobs:
            if definition.when == When.NEVER:
                continue
            job = Job(id=new_id(), build_id=build.id, definition=definition, spec=spec)
            build.jobs[definition.name] = job
        if any(p.get("severity") == "error" for p in problems):
            build.status = BuildStatus.FAILED
            build.failure_reason = "config_error"
            build.finished_at = now
            build.jobs.clear()
        elif not build.jobs:
            build.status = BuildStatus.SKIPPED
            build.finished_at = now
        build.record(
            BuildCreated(
                build_id=build.id,
                project_id=project_id,
                pipeline_id=pipeline_id,
                number=number,
                ref=ref,
                sha=sha,
                status=build.status.value,
            )
        )
        if build.jobs:
            build.progress(now)
        elif build.status.is_finished:
            build.record(BuildCompleted(build_id=build.id, status=build.status.value))
        return build

    # --- queries -----------------------------------------------------------------------

    def job(self, job_id: str) -> Job:
        for job in self.jobs.values():
            if job.id == job_id:
                return job
        raise NotFound(f"build {self.id} has no job {job_id}")

    def job_named(self, name: str) -> Job:
        try:
            return self.jobs[name]
        except KeyError:
            raise NotFound(f"build {self.id} has no job named {name!r}") from None

    def record(self, event: Event) -> None:
        self.events.append(event)

    def _nodes(self) -> dict[str, JobNode]:
        return {name: job.definition.node() for name, job in self.jobs.items()}

    def _states(self) -> dict[str, JobState]:
        return {name: JobState(job.status, job.failure_allowed) for name, job in self.jobs.items()}

    # --- commands ----------------------------------------------------------------------

    def progress(self, now: datetime) -> None:
        """Start what can start, skip what must be skipped, and derive the build's status."""
        for name, status in advance(self._nodes(), self._states()).items():
            job = self.jobs[name]
            job.move(status)
            if status == JobStatus.PENDING:
                self._queue(job, now)
            elif status == JobStatus.SCHEDULED:
                job.scheduled_for = now + timedelta(seconds=job.definition.start_in or 0)
            elif status.is_finished:
                job.finished_at = now
        self._derive_status(now)

    def _queue(self, job: Job, now: datetime) -> None:
        job.queued_at = now
        self.record(
            JobQueued(build_id=self.id, job_id=job.id, name=job.name, tags=job.definition.tags)
        )

    def _derive_status(self, now: datetime) -> None:
        if self.status.is_finished and not self._any_unfinished():
            return
        new = build_status(self._nodes().values(), self._states(), previous=self.status)
        if new == self.status:
            return
        if new == BuildStatus.RUNNING and self.started_at is None:
            self.started_at = now
            self.record(BuildStarted(build_id=self.id))
        self.status = new
        self.has_succeeded = self.has_succeeded or new == BuildStatus.SUCCESS
        if new.is_finished:
            self.finished_at = now
            self.record(BuildCompleted(build_id=self.id, status=new.value))
        else:
            self.finished_at = None

    def _any_unfinished(self) -> bool:
        return any(not job.status.is_finished for job in self.jobs.values())

    def start_job(self, job_id: str, agent_id: str, now: datetime) -> Job:
        """An agent leased a pending job: a new attempt begins."""
        job = self.job(job_id)
        job.move(JobStatus.RUNNING)
        job.attempt += 1
        job.agent_id = agent_id
        job.started_at = now
        job.finished_at = None
        job.exit_code = None
        job.failure_reason = None
        job.coverage = None
        self.record(
            JobStarted(build_id=self.id, job_id=job.id, agent_id=agent_id, attempt=job.attempt)
        )
        self._derive_status(now)
        return job

    def complete_job(
        self,
        job_id: str,
        *,
        attempt: int,
        exit_code: int | None,
        failure_reason: str | None,
        now: datetime,
        coverage: float | None = None,
        phases: tuple[Phase, ...] = (),
    ) -> Job:
        """The result of one attempt. The same report again (its answer was lost) changes
        nothing; a different result, or a report for an attempt not running, is a Conflict.
        ``coverage`` is kept when the job finishes (not when it is queued for a retry)."""
        phases = checked_phases(phases)
        job = self.job(job_id)
        if any(
            past.number == attempt
            and past.exit_code == exit_code
            and (past.failure_reason is None) == (exit_code == 0 and failure_reason is None)
            for past in job.history
        ):
            return job  # the same report again (its answer was lost): already recorded
        if job.status != JobStatus.RUNNING or job.attempt != attempt:
            raise Conflict(
                f"job {job.name!r} attempt {attempt} is not running (it is {job.status}, "
                f"attempt {job.attempt}); its result was already recorded or it was taken over"
            )
        succeeded = exit_code == 0 and failure_reason is None
        reason = None if succeeded else (failure_reason or SCRIPT_FAILURE)
        job.exit_code = exit_code
        job.failure_reason = reason
        status = JobStatus.SUCCESS if succeeded else JobStatus.FAILED
        self._finish_attempt(job, status, now, phases)
        if reason is not None and job.definition.earns_retry(job.attempt, reason, exit_code):
            job.move(JobStatus.PENDING)
            job.agent_id = None
            self._queue(job, now)
        else:
            job.move(status)
            job.failure_allowed = status == JobStatus.FAILED and job.definition.failure_allowed(
                exit_code
            )
            job.finished_at = now
            job.coverage = coverage
        self.progress(now)
        return job

    def _finish_attempt(
        self, job: Job, status: JobStatus, now: datetime, phases: tuple[Phase, ...] = ()
    ) -> None:
        job.history.append(
            Attempt(
                number=job.attempt,
                status=status,
                agent_id=job.agent_id,
                exit_code=job.exit_code,
                failure_reason=job.failure_reason,
                started_at=job.started_at,
                finished_at=now,
                phases=phases,
            )
        )
        self.record(
            JobCompleted(
                build_id=self.id,
                job_id=job.id,
                name=job.name,
                status=status.value,
                attempt=job.attempt,
                exit_code=job.exit_code,
                failure_reason=job.failure_reason,
            )
        )

    def lose_job(self, job_id: str, now: datetime) -> Job:
        """The agent running this job vanished: GitLab's ``runner_system_failure``."""
        job = self.job(job_id)
        return self.complete_job(
            job_id,
            attempt=job.attempt,
            exit_code=None,
            failure_reason=RUNNER_SYSTEM_FAILURE,
            now=now,
        )

    def cancel(self, now: datetime) -> None:
        if self.status.is_finished:
            raise InvalidTransition(f"build {self.number} is already {self.status}")
        for job in self.jobs.values():
            if not job.status.is_finished:
                self._cancel_job(job, now)
        self.status = BuildStatus.CANCELED
        self.finished_at = now
        self.record(BuildCompleted(build_id=self.id, status=self.status.value))

    def cancel_jobs(self, names: list[str], now: datetime) -> None:
        """Cancel some unfinished jobs and let the others go on (auto-cancel of the
        ``interruptible`` jobs): what waited for a canceled job is then skipped."""
        jobs = [self.job_named(name) for name in names]
        for job in jobs:
            if job.status.is_finished:
                raise InvalidTransition(f"job {job.name!r} is already {job.status}")
        for job in jobs:
            self._cancel_job(job, now)
        self.progress(now)

    def _cancel_job(self, job: Job, now: datetime) -> None:
        if job.status == JobStatus.RUNNING:
            self.record(JobCancelRequested(build_id=self.id, job_id=job.id, agent_id=job.agent_id))
            job.failure_reason = "canceled"
            self._finish_attempt(job, JobStatus.CANCELED, now)
        job.move(JobStatus.CANCELED)
        job.finished_at = now

    def play(self, name: str, now: datetime) -> Job:
        """A person starts a manual job (or a delayed one early)."""
        job = self.job_named(name)
        if job.status not in (JobStatus.MANUAL, JobStatus.SCHEDULED):
            raise InvalidTransition(f"job {name!r} is {job.status}, not a manual job to play")
        job.move(JobStatus.PENDING)
        self._queue(job, now)
        self._reset_skipped([name])
        self.progress(now)
        return job

    def start_due(self, now: datetime) -> list[Job]:
        """Queue the delayed jobs whose time has come."""
        due = [
            job
            for job in self.jobs.values()
            if job.status == JobStatus.SCHEDULED
            and job.scheduled_for is not None
            and job.scheduled_for <= now
        ]
        for job in due:
            job.move(JobStatus.PENDING)
            self._queue(job, now)
        if due:
            self._derive_status(now)
        return due

    def retry_jobs(self, names: list[str], now: datetime) -> list[Job]:
        """Run finished jobs again as new attempts, and reconsider what was skipped after them."""
        jobs = [self.job_named(name) for name in names]
        for job in jobs:
            if job.status not in (JobStatus.FAILED, JobStatus.CANCELED, JobStatus.SUCCESS):
                raise InvalidTransition(
                    f"job {job.name!r} is {job.status}; only finished jobs retry"
                )
        for job in jobs:
            job.status = JobStatus.CREATED  # a new attempt, not a move of the finished one
            job.failure_allowed = False
            job.agent_id = None
            job.finished_at = None
            job.coverage = None
        self._reset_skipped([job.name for job in jobs])
        # A retried job whose upstream is retried too (say, every job of a canceled build)
        # waits for it, as a new job would; the others are queued at once.
        nodes, states = self._nodes(), self._states()
        for job in jobs:
            if upstream_status(nodes[job.name], nodes, states) != "wait":
                job.status = JobStatus.PENDING
                self._queue(job, now)
        self.finished_at = None
        self.progress(now)
        return jobs

    def retry(self, now: datetime) -> list[Job]:
        """Retry every failed or canceled job of a finished build."""
        if not self.status.is_finished:
            raise InvalidTransition(f"build {self.number} is {self.status}; wait for it to finish")
        names = [
            job.name
            for job in self.jobs.values()
            if job.status in (JobStatus.FAILED, JobStatus.CANCELED)
        ]
        if not names:
            raise InvalidTransition(f"build {self.number} has no failed or canceled job to retry")
        return self.retry_jobs(names, now)

    def _reset_skipped(self, names: list[str]) -> None:
        for name, status in reset_skipped(self._nodes(), self._states(), names).items():
            job = self.jobs[name]
            job.move(status)
            job.finished_at = None
