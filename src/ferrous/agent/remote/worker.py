"""An agent's main loop: claim jobs while it has room, run them, heartbeat, report.

Per job: the claim's payload is read (``Assignment``); a ``LogShipper`` starts, masking the
values the claim lists (``mask``: the job's masked secrets and the repository credentials); a
``JobRun`` runs in a thread of its own (it is synchronous) with the build's commit fetched into
``work_dir/<job_id>`` (through the agent's git cache ``git_cache_dir``, default
``work_dir/../git-cache``: see ``source``), the artifacts of its ``dependencies`` and its
caches downloaded from the server (``transfer.ServerFiles``, which also uploads the job's own,
and unpacks under the payload's ``limits``), ``retry`` off (one attempt: the server decides
retries) and the payload's per-run variables; then the log is flushed and the result reported
with ``complete``: exit code, failure reason (``script_failure``, ``job_execution_timeout``,
or ``runner_system_failure`` when the agent itself failed: the clone, an unreadable payload, a
corrupt or oversized artifact, an agent stopping without waiting) and the coverage the job's
``coverage:`` regex found in its log.

Heartbeats go every ``heartbeat_interval`` seconds with the running job ids; the server's
answer names the jobs to cancel, which are canceled (their process trees killed) and not
reported: the server already decided. A lost lease (a refused log chunk) cancels the job too.

Concurrency: everything here runs on one event loop, except the job runs, each in its own
thread. Stopping is the caller's decision (a SIGTERM handler, ``ferrous serve``):
``stop(graceful=True)`` stops claiming and waits for the running jobs; ``stop(False)``, or
cancelling the task of ``run``, cancels them and reports them as ``runner_system_failure``.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import os
import shutil
import traceback
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import structlog

from ferrous import __version__
from ferrous.agent.executor_choice import ExecutorChoice
from ferrous.agent.job_runner import (
    SCRIPT_FAILURE,
    SYSTEM_FAILURE,
    JobOutcome,
    JobRequest,
    JobRun,
    JobSite,
)
from ferrous.agent.masking import MIN_LENGTH
from ferrous.agent.remote.assignment import Assignment
from ferrous.agent.remote.log_shipper import LogShipper
from ferrous.agent.remote.protocol import AgentApi, AgentProtocolError, LeaseLost, Unauthorized
from ferrous.agent.remote.source import GitCommitSource
from ferrous.agent.remote.transfer import ServerFiles, remove_leftovers
from ferrous.domain.errors import InvalidValue
from ferrous.domain.statuses import JobStatus

log = structlog.get_logger(__name__)

HEARTBEAT_INTERVAL = 2.0
#: How long a stopping agent waits for canceled jobs to end and be reported.
ABORT_WAIT = 30.0

# Why a job was stopped before its end: the server canceled it, the server refused its log
# (the lease is gone), or this agent is stopping.
_BY_SERVER = "canceled"
_LEASE_LOST = "lease_lost"
_AGENT_STOPPING = "agent_stopping"


class _Job:
    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        self.stopped_by: str | None = None
        self.run: JobRun | None = None
        self.files: ServerFiles | None = None
        self.task: asyncio.Task[None] | None = None

    def attach(self, run: JobRun, files: ServerFiles) -> None:
        self.run, self.files = run, files
        if self.stopped_by is not None:
            self.cancel(self.stopped_by)

    def cancel(self, why: str) -> None:
        if self.stopped_by is None:
            self.stopped_by = why
        if self.run is not None:
            self.run.cancel()
        if self.files is not None:
            self.files.cancel()


class AgentWorker:
    """Runs up to ``capacity`` jobs at once for the server behind ``client``."""

    def __init__(
        self,
        client: AgentApi,
        *,
        capacity: int = 1,
        work_dir: Path,
        labels: Sequence[str] = (),
        name: str = "agent",
        heartbeat_interval: float = HEARTBEAT_INTERVAL,
        git_cache_dir: Path | None = None,
        kill_grace: float = 5.0,
        keep_workspaces: bool = False,
        executor: ExecutorChoice = ExecutorChoice(),  # noqa: B008  # immutable
    ) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self.name = name
        self.labels = tuple(labels)
        self.work_dir = work_dir.absolute()
        self.git_cache_dir = (git_cache_dir or self.work_dir.parent / "git-cache").absolute()
        self._client = client
        self._interval = heartbeat_interval
        self._kill_grace = kill_grace
        self._keep = keep_workspaces
        self._executor = executor
        self._jobs: dict[str, _Job] = {}
        self._changed = asyncio.Event()  # a job ended, or stop was asked
        self._stop_asked = asyncio.Event()
        self._done = asyncio.Event()
        self._started = False
        self._fatal: BaseException | None = None
        self._aborting = False
        self._pool = ThreadPoolExecutor(max_workers=capacity, thread_name_prefix=f"{name} job")

    @property
    def running(self) -> list[str]:
        return list(self._jobs)

    async def run(self) -> None:
        """Claim and run jobs until ``stop``; raises ``Unauthorized`` if the token is refused."""
        if self._started:
            raise RuntimeError("AgentWorker.run may be called once")
        self._started = True
        self.work_dir.mkdir(parents=True, exist_ok=True)
        for leftover in self.work_dir.glob(".trash-*"):
            shutil.rmtree(leftover, ignore_errors=True)
        remove_leftovers(self.work_dir)
        log.info("agent_started", agent=self.name, capacity=self.capacity, labels=self.labels)
        heartbeats = asyncio.create_task(self._heartbeats(), name=f"{self.name} heartbeats")
        try:
            await self._claim_loop()
            await self._wait_for_jobs(None)
        except BaseException:
            self._abort()
            await self._wait_for_jobs(ABORT_WAIT)
            raise
        finally:
            heartbeats.cancel()
            await asyncio.gather(heartbeats, return_exceptions=True)
            self._pool.shutdown(wait=False)
            self._done.set()
            log.info("agent_stopped", agent=self.name)
        if self._fatal is not None:
            raise self._fatal

    async def stop(self, graceful: bool = True) -> None:
        """Stop claiming; wait for the running jobs (``graceful``) or cancel them."""
        self._stop_asked.set()
        self._changed.set()
        if not graceful:
            self._abort()
        if self._started:
            await self._done.wait()

    def _abort(self) -> None:
        self._aborting = True
        self._stop_asked.set()
        self._changed.set()
        for job in self._jobs.values():
            job.cancel(_AGENT_STOPPING)

    async def _wait_for_jobs(self, timeout: float | None) -> None:
        tasks = [job.task for job in self._jobs.values() if job.task is not None]
        if not tasks:
            return
        _, late = await asyncio.wait(tasks, timeout=timeout)
        for task in late:
            task.cancel()
        if late:
            log.error("jobs_abandoned", agent=self.name, count=len(late))

    async def _claim_loop(self) -> None:
        failures = 0
        while not self._stop_asked.is_set():
            self._changed.clear()
            if len(self._jobs) >= self.capacity:
                await self._changed.wait()
                continue
            claim = asyncio.ensure_future(self._client.claim())
            stopping = asyncio.ensure_future(self._stop_asked.wait())
            try:
                await asyncio.wait({claim, stopping}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                stopping.cancel()
                if not claim.done():
                    claim.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await claim
            if claim.cancelled():
                return
            error = claim.exception()
            if isinstance(error, Unauthorized):
                raise error
            if isinstance(error, AgentProtocolError):
                failures += 1
                log.warning("claim_failed", agent=self.name, error=error.message)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop_asked.wait(), min(30.0, 2.0**failures))
                continue
            payload = claim.result()
            failures = 0
            if payload is not None:
                self._start(payload)

    def _start(self, payload: dict[str, Any]) -> None:
        job_id = str(payload.get("job_id") or "")
        if not job_id:
            log.error("claim_without_job_id", agent=self.name, keys=sorted(payload))
            return
        job = _Job(job_id)
        self._jobs[job_id] = job
        if self._aborting:
            job.cancel(_AGENT_STOPPING)
        job.task = asyncio.create_task(
            self._run_job(job, payload), name=f"job {job_id}", context=self._log_context(payload)
        )

    def _log_context(self, payload: dict[str, Any]) -> contextvars.Context:
        """A context for the job's task in which every log line names the job, its build and
        this agent (its id when the client has one: ``AgentClient`` does)."""
        ids = {
            "job_id": payload.get("job_id"),
            "build_id": payload.get("build_id"),
            "agent_id": getattr(self._client, "agent_id", None),
        }
        bound = {name: str(value) for name, value in ids.items() if value is not None}
        context = contextvars.copy_context()
        context.run(structlog.contextvars.bind_contextvars, **bound)
        return context

    async def _run_job(self, job: _Job, payload: dict[str, Any]) -> None:
        attempt = payload.get("attempt")
        shipper = LogShipper(
            self._client,
            job.job_id,
            on_lease_lost=lambda: job.cancel(_LEASE_LOST),
            start_offset=int(payload.get("log_offset", 0)),
            mask=mask_values(payload),
        )
        shipper.start()
        if shipper.masker.too_short:
            shipper.note(
                f"WARNING: {shipper.masker.too_short} secret value(s) shorter than "
                f"{MIN_LENGTH} bytes cannot be masked in this log"
            )
        workspace = self.work_dir / job.job_id
        try:
            try:
                assignment = Assignment.parse(payload)
            except (KeyError, TypeError, ValueError, InvalidValue) as exc:
                log.error("job_unreadable", job_id=job.job_id, error=repr(exc))
                shipper.note(f"ERROR: Job failed (system failure): the agent cannot read it: {exc}")
                outcome = JobOutcome(JobStatus.FAILED, None, SYSTEM_FAILURE, False, 1)
            else:
                log.info("job_started", agent=self.name, job_id=job.job_id, name=assignment.name)
                await asyncio.to_thread(self._trash, workspace)
                loop = asyncio.get_running_loop()
                files = ServerFiles(
                    self._client,
                    job.job_id,
                    loop,
                    temp_dir=self.work_dir,
                    max_unpacked_bytes=assignment.max_unpacked_bytes,
                )
                run = self._job_run(assignment, shipper, files, mask_values(payload))
                job.attach(run, files)
                in_context = functools.partial(contextvars.copy_context().run, _run, run, shipper)
                outcome = await loop.run_in_executor(self._pool, in_context)  # the job's log ids
        finally:
            shipper.close()
            await shipper.finish()
        try:
            if isinstance(attempt, int):
                await self._report(job, attempt, outcome)
        finally:
            self._jobs.pop(job.job_id, None)
            self._changed.set()
        await asyncio.to_thread(self._trash, workspace, remove=not self._keep)

    def _job_run(
        self,
        assignment: Assignment,
        shipper: LogShipper,
        files: ServerFiles,
        mask: Sequence[str],
    ) -> JobRun:
        if assignment.retry_reason:  # the same words as ferrous run's, for the same event
            shipper.note(
                f"Retrying ({assignment.retry_reason}): attempt {assignment.attempt} "
                f"of {assignment.max_attempts}"
            )
        shipper.note(
            f"Running with ferrous {__version__} on {self.name} "
            f"({self._executor.describe()}), attempt {assignment.attempt}"
        )
        site = JobSite(
            source=GitCommitSource(
                assignment.repo_url,
                assignment.sha,
                assignment.ref,
                credentials=assignment.credentials,
                cache_dir=self.git_cache_dir,
            ),
            builds_dir=self.work_dir,
            artifacts=files,
            caches=files,
            executor=self._executor.factory(
                scratch_dir=self.work_dir / ".scripts", kill_grace=self._kill_grace
            ),
            keep_workspaces=True,  # removed by the worker, after the result is reported
        )
        request = JobRequest(
            spec=assignment.spec,
            key=assignment.job_id,
            artifacts_from=assignment.dependencies,
            variables=assignment.variables,
            mask=tuple(mask),
        )
        return JobRun(request, site, shipper)

    async def _report(self, job: _Job, attempt: int, outcome: JobOutcome) -> None:
        fields = {"agent": self.name, "job_id": job.job_id, "attempt": attempt}
        if job.stopped_by in (_BY_SERVER, _LEASE_LOST):
            log.info("job_canceled", reason=job.stopped_by, **fields)
            return
        exit_code: int | None = 0
        reason: str | None = None
        if outcome.status == JobStatus.FAILED:
            exit_code, reason = outcome.exit_code, outcome.failure_reason or SCRIPT_FAILURE
        elif outcome.status != JobStatus.SUCCESS:  # canceled as this agent stops: not the script
            exit_code, reason = None, SYSTEM_FAILURE
        try:
            status = await self._client.complete(
                job.job_id,
                attempt,
                exit_code,
                reason,
                outcome.coverage,
                job.run.phases if job.run is not None else (),
            )
        except LeaseLost as exc:
            log.info("job_result_refused", detail=exc.message, **fields)
        except Unauthorized as exc:
            self._fatal = exc
            self._abort()
        except AgentProtocolError as exc:
            log.error("job_result_not_reported", error=exc.message, **fields)
        else:
            log.info(
                "job_completed",
                status=status,
                exit_code=exit_code,
                reason=reason,
                coverage=outcome.coverage,
                **fields,
            )

    async def _heartbeats(self) -> None:
        failing = False
        while True:
            await asyncio.sleep(self._interval)
            try:
                cancel = await self._client.heartbeat(list(self._jobs))
            except Unauthorized as exc:
                self._fatal = exc
                self._abort()
                return
            except AgentProtocolError as exc:
                if not failing:
                    log.warning("heartbeat_failed", agent=self.name, error=exc.message)
                failing = True
                continue
            if failing:
                log.info("heartbeat_restored", agent=self.name)
            failing = False
            for job_id in cancel:
                job = self._jobs.get(job_id)
                if job is not None:
                    log.info("job_cancel_requested", agent=self.name, job_id=job_id)
                    job.cancel(_BY_SERVER)

    def _trash(self, workspace: Path, remove: bool = True) -> None:
        """Move a workspace out of the way at once; delete it unless ``remove`` is False."""
        if not remove or not workspace.exists():
            return
        trash = self.work_dir / f".trash-{uuid.uuid4().hex[:12]}"
        try:
            os.rename(workspace, trash)
        except OSError:
            trash = workspace
        shutil.rmtree(trash, ignore_errors=True)


def mask_values(payload: dict[str, Any]) -> list[str]:
    """The claim's ``mask``: read before anything else in the payload, and leniently, so that
    even a job the agent cannot otherwise read has its secrets masked in what it reports."""
    values = payload.get("mask")
    if not isinstance(values, list):
        return []
    return [value for value in values if isinstance(value, str)]


def _run(run: JobRun, shipper: LogShipper) -> JobOutcome:
    """In the job's thread: a bug must fail the job, never the agent."""
    try:
        return run.run()
    except Exception:
        log.exception("job_crashed", job_id=run.request.key)
        with contextlib.suppress(Exception):
            shipper.note("ERROR: internal error of the agent\n" + traceback.format_exc())
        return JobOutcome(JobStatus.FAILED, None, SYSTEM_FAILURE, False, 1)
