"""One job, from a fresh workspace to its final status, retries included.

Each attempt is what one GitLab job run is: a fresh copy of the source, the artifacts of the
jobs it depends on, its caches, ``before_script`` + ``script`` in one shell, ``after_script``
in another (its failure never fails the job), then caches and artifacts saved according to
their ``when``, and the ``coverage:`` regex applied to the scripts' output. A failed attempt
that ``retry`` allows is followed by another one; the job's status, exit code, coverage and
``allow_failure`` verdict come from the last.

What to unpack, and when the job may start, is decided by whoever schedules jobs (the local
pipeline runner here, the server for agents): a job run only does what it is told.
"""

from __future__ import annotations

import itertools
import re
import shutil
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple, Protocol

from ferrous.agent.artifacts import (
    ArtifactTransfer,
    download_artifacts,
    matches_when,
    upload_artifacts,
)
from ferrous.agent.cache import CacheTransfer, restore_caches, save_caches
from ferrous.agent.coverage import CoverageScanner, compile_coverage
from ferrous.agent.executor import Executor, OutputSink, Step, StepResult
from ferrous.agent.job_env import job_variables, run_values
from ferrous.agent.workspace import SourceTree
from ferrous.domain.errors import FerrousError
from ferrous.domain.phases import Phase
from ferrous.domain.statuses import JobStatus
from ferrous.pipeline_config.plan import JobSpec

#: GitLab's default job timeout (the project setting) and after_script timeout.
DEFAULT_TIMEOUT = 3600.0
AFTER_SCRIPT_TIMEOUT = 300.0

SCRIPT_FAILURE = "script_failure"
TIMEOUT_FAILURE = "job_execution_timeout"
SYSTEM_FAILURE = "runner_system_failure"


class JobLog(Protocol):
    """Where a job's output goes: ``logs.JobOutput`` locally, a log shipper on an agent.

    ``write`` takes the scripts' raw bytes (the ``OutputSink`` of the executor), ``note`` a
    message of the runner on its own line, ``end_line`` finishes an unterminated last line.
    A job run calls them from its own thread; ``close`` is the caller's, after ``run``.
    """

    def write(self, data: bytes) -> None: ...

    def end_line(self) -> None: ...

    def note(self, text: str) -> None: ...

    def close(self) -> None: ...


class SourceFetcher(Protocol):
    """A source the job fetches itself (an agent's commit checkout), not a scanned folder.

    ``fetch`` fills the empty workspace as the job's ``variables`` say (``GIT_STRATEGY``,
    ``GIT_DEPTH``, ``GIT_SUBMODULE_STRATEGY``; never called for ``none``), telling what it
    does through ``note``; it raises ``OSError`` or a ``FerrousError`` when it cannot (a
    system failure of the job).
    """

    def fetch(
        self, workspace: Path, variables: Mapping[str, str], note: Callable[[str], None]
    ) -> None: ...

    def untracked(self, workspace: Path) -> list[str]: ...


class JobRequest(NamedTuple):
    spec: JobSpec
    key: str  # folder-safe name, unique in the run: workspace, log and artifact folders
    artifacts_from: tuple[tuple[str, str], ...] = ()  # (job name, key), in unpack order
    manual: bool = False  # played by a person (CI_JOB_MANUAL)
    #: Per-run values the scheduler decided (the server's CI_JOB_ID, ...): they win over
    #: the ones the job run computes, and are taken verbatim.
    variables: Mapping[str, str] = {}
    #: Secret values masked in the log: the coverage scan sees the output masked too.
    mask: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class JobSite:
    """What every job of a run shares: the source, the stores, where to work, how to run."""

    source: SourceTree | SourceFetcher
    builds_dir: Path  # each job's workspace is a folder in here
    artifacts: ArtifactTransfer
    caches: CacheTransfer
    executor: Callable[[str], Executor]  # job key -> a fresh executor
    keep_workspaces: bool = False
    #: CI_JOB_ID of each attempt: unique in the run, as a retried GitLab job gets a new id.
    next_job_id: Callable[[], int] = field(default_factory=lambda: itertools.count(1).__next__)


class JobOutcome(NamedTuple):
    status: JobStatus  # success, failed or canceled
    exit_code: int | None
    failure_reason: str | None
    failure_allowed: bool
    attempts: int
    coverage: float | None = None  # by the ``coverage:`` regex, from the last attempt


class _Attempt(NamedTuple):
    status: JobStatus
    exit_code: int | None
    reason: str | None
    coverage: float | None = None


class _Canceled(Exception):
    pass


class _PhaseClock:
    """Times an attempt's phases: each ``enter`` ends the phase before it."""

    def __init__(self) -> None:
        self.phases: list[Phase] = []
        self._open: tuple[str, datetime] | None = None

    def enter(self, name: str) -> None:
        self.stop()
        self._open = (name, datetime.now(UTC))

    def stop(self) -> None:
        if self._open is not None:
            name, started = self._open
            self.phases.append(Phase(name=name, started_at=started, finished_at=datetime.now(UTC)))
            self._open = None


class JobRun:
    """Runs one job; ``cancel`` may be called from any thread while ``run`` is going."""

    def __init__(self, request: JobRequest, site: JobSite, output: JobLog) -> None:
        self.request = request
        self._site = site
        self._out = output
        self._lock = threading.Lock()
        self._canceled = False
        self._executor: Executor | None = None
        self._phases = _PhaseClock()

    def cancel(self) -> None:
        with self._lock:
            self._canceled = True
            executor = self._executor
        if executor is not None:
            executor.cancel()

    def _check(self) -> None:
        if self._canceled:
            raise _Canceled

    def run(self) -> JobOutcome:
        spec = self.request.spec
        attempt = 0
        while True:
            attempt += 1
            result = self._attempt(attempt)
            if result.status != JobStatus.FAILED or self._canceled:
                break
            reason = result.reason or SCRIPT_FAILURE
            if not spec.retry.should_retry(attempt, reason, result.exit_code):
                break
            self._out.note(f"Retrying ({reason}): attempt {attempt + 1} of {spec.retry.max + 1}")
        allowed = result.status == JobStatus.FAILED and spec.allow_failure.permits(result.exit_code)
        if allowed:
            self._out.note("Job failed, but allow_failure permits it")
        return JobOutcome(
            result.status, result.exit_code, result.reason, allowed, attempt, result.coverage
        )

    @property
    def phases(self) -> tuple[Phase, ...]:
        """How long the last attempt's phases took (prepare, script, after_script, upload),
        for the build's trace; read after ``run``."""
        return tuple(self._phases.phases)

    @property
    def workspace(self) -> Path:
        return self._site.builds_dir / self.request.key

    def discard_workspace(self) -> None:
        """Remove the last attempt's workspace, unless the site keeps them.

        Separate from ``run`` so that a scheduler can report the job's result (and start the
        next job) first: removing a big tree takes a while.
        """
        if not self._site.keep_workspaces:
            shutil.rmtree(self.workspace, ignore_errors=True)

    def _attempt(self, number: int) -> _Attempt:
        spec = self.request.spec
        workspace = self.workspace
        if number > 1:  # a retry starts afresh, as a new GitLab job would
            shutil.rmtree(workspace, ignore_errors=True)
        self._phases = _PhaseClock()
        try:
            self._phases.enter("prepare")
            self._check()
            if number > 1 or spec.retry.max:
                self._out.note(f"Attempt {number} of {spec.retry.max + 1}")
            return self._run_in(workspace)
        except _Canceled:
            self._out.note("ERROR: Job canceled")
            return _Attempt(JobStatus.CANCELED, None, None)
        except (OSError, FerrousError) as exc:
            if self._canceled:  # a transfer cut short by the cancel, most likely
                self._out.note("ERROR: Job canceled")
                return _Attempt(JobStatus.CANCELED, None, None)
            self._out.note(f"ERROR: Job failed (system failure): {exc}")
            return _Attempt(JobStatus.FAILED, None, SYSTEM_FAILURE)
        finally:
            self._phases.stop()

    def _run_in(self, workspace: Path) -> _Attempt:
        spec, site, out = self.request.spec, self._site, self._out
        timeout = float(spec.timeout) if spec.timeout else DEFAULT_TIMEOUT
        per_run = run_values(
            spec,
            job_id=site.next_job_id(),
            project_dir=workspace,
            builds_dir=site.builds_dir,
            timeout=timeout,
            manual=self.request.manual,
        )
        per_run.update(self.request.variables)
        variables = job_variables(spec, per_run)
        strategy = variables.get("GIT_STRATEGY")
        if strategy in ("none", "empty"):  # a workspace is always new here: empty is none
            out.note(f"Skipping the source: GIT_STRATEGY is {strategy}")
            workspace.mkdir(parents=True, exist_ok=True)
        elif isinstance(site.source, SourceTree):
            out.note(f"Getting source from {site.source.root} ({len(site.source.files)} files)")
            site.source.copy_to(workspace)
        else:
            site.source.fetch(workspace, variables, out.note)
        download_artifacts(
            self.request.artifacts_from, site.artifacts, workspace, out.note, self._check
        )
        restore_caches(spec.cache, site.caches, workspace, variables, out.note)
        self._check()
        executor = site.executor(self.request.key)
        with self._lock:
            self._executor = executor
        if executor.name in ("shell", "sandbox") and (spec.image or spec.services):
            out.note("WARNING: the shell executor runs on this machine: image/services ignored")
        scanner = self._coverage_scanner()
        sink: OutputSink = out if scanner is None else _Tee(out, scanner)
        try:
            executor.prepare(workspace)
            self._check()
            self._phases.enter("script")
            script = executor.run(
                Step(
                    name="script",
                    commands=spec.before_script + spec.script,
                    variables=variables,
                    timeout=timeout,
                ),
                sink,
            )
            out.end_line()
            if script.canceled:
                raise _Canceled
            self._after_script(executor, variables, script, sink)
        finally:
            executor.cleanup()
        coverage = scanner.finish() if scanner is not None else None
        if coverage is not None:
            out.note(f"Coverage: {coverage:g}%")
        result = self._finish(workspace, variables, script, timeout)
        return result._replace(coverage=coverage)

    def _coverage_scanner(self) -> CoverageScanner | None:
        pattern = self.request.spec.coverage
        if not pattern:
            return None
        try:
            regex = compile_coverage(pattern)
        except re.error as exc:
            self._out.note(f"WARNING: coverage regex {pattern}: {exc}; no coverage is read")
            return None
        return CoverageScanner(regex, self.request.mask)

    def _after_script(
        self, executor: Executor, variables: dict[str, str], script: StepResult, sink: OutputSink
    ) -> None:
        if not self.request.spec.after_script:
            return
        self._phases.enter("after_script")
        self._out.note("Running after_script")
        status = "success" if script.ok else "failed"
        after = executor.run(
            Step(
                name="after_script",
                commands=self.request.spec.after_script,
                variables={**variables, "CI_JOB_STATUS": status},
                timeout=AFTER_SCRIPT_TIMEOUT,
            ),
            sink,
        )
        self._out.end_line()
        if after.canceled:
            raise _Canceled
        if not after.ok:
            code = "timed out" if after.timed_out else f"exit code {after.exit_code}"
            self._out.note(f"WARNING: after_script failed ({code}), ignored")

    def _finish(
        self, workspace: Path, variables: dict[str, str], script: StepResult, timeout: float
    ) -> _Attempt:
        spec, site, out = self.request.spec, self._site, self._out
        succeeded = script.ok

        def untracked() -> list[str]:
            return site.source.untracked(workspace)

        if spec.cache or spec.artifacts is not None:
            self._phases.enter("upload")
        else:
            self._phases.stop()
        save_caches(
            spec.cache,
            site.caches,
            workspace,
            variables,
            succeeded=succeeded,
            untracked=untracked,
            note=out.note,
        )
        if spec.artifacts is not None and matches_when(spec.artifacts.when, succeeded):
            upload_artifacts(
                spec.artifacts,
                site.artifacts,
                self.request.key,
                workspace,
                variables,
                untracked,
                out.note,
            )
        if succeeded:
            out.note("Job succeeded")
            return _Attempt(JobStatus.SUCCESS, 0, None)
        if script.timed_out:
            out.note(f"ERROR: Job failed: execution took longer than {timeout:g} seconds")
            return _Attempt(JobStatus.FAILED, None, TIMEOUT_FAILURE)
        out.note(f"ERROR: Job failed: exit code {script.exit_code}")
        return _Attempt(JobStatus.FAILED, script.exit_code, SCRIPT_FAILURE)


class _Tee:
    """The scripts' output to the log and to the coverage scan."""

    def __init__(self, out: JobLog, scanner: CoverageScanner) -> None:
        self._out = out
        self._scanner = scanner

    def write(self, data: bytes) -> None:
        self._out.write(data)
        self._scanner.feed(data)
