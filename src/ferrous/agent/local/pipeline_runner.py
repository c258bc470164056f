"""A whole pipeline on this machine: jobs start as soon as GitLab's rules allow, not by stage.

Every scheduling decision comes from ``ferrous.domain.progression.advance``, the same function
the server's Build aggregate uses: which jobs become pending, manual, scheduled or skipped.
This module only carries those decisions out: it starts pending jobs (at most
``max_parallel`` at once, in plan order, one at a time per ``resource_group``), plays the
manual jobs it was told to play, starts delayed jobs when their time comes, and cancels
everything when asked.

Threads: ``run`` is the one coordinating thread and owns every record. Up to ``max_parallel``
worker threads, started as needed and kept for the whole run, take jobs from a queue and
report back through another; one more thread removes finished jobs' workspaces meanwhile.
``cancel`` only puts a message on the report queue (``SimpleQueue.put`` is safe even in a
signal handler), so it can be called from anywhere.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
import traceback
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import NamedTuple

from ferrous.agent.job_runner import SYSTEM_FAILURE, JobOutcome, JobRequest, JobRun, JobSite
from ferrous.agent.local.layout import RunLayout, job_keys
from ferrous.agent.local.records import JobRecord, RunResult
from ferrous.agent.local.selection import artifact_sources
from ferrous.agent.logs import Console, JobOutput
from ferrous.archive import SUFFIX
from ferrous.domain.progression import JobNode, advance, build_status
from ferrous.domain.statuses import JobStatus
from ferrous.pipeline_config.plan import JobSpec

#: What canceling a pipeline cancels besides running jobs (GitLab leaves manual jobs alone).
_CANCELABLE = frozenset({JobStatus.CREATED, JobStatus.PENDING, JobStatus.SCHEDULED})


class RunOptions(NamedTuple):
    max_parallel: int
    play: frozenset[str] = frozenset()  # manual jobs to run as if someone pressed play


class _Done(NamedTuple):
    name: str
    outcome: JobOutcome


_CANCEL = None  # the message that asks the run to stop


class PipelineRunner:
    def __init__(
        self,
        jobs: Sequence[JobSpec],
        *,
        site: JobSite,
        layout: RunLayout,
        console: Console,
        options: RunOptions,
    ) -> None:
        self._jobs = tuple(jobs)
        self._site = site
        self._console = console
        self._options = options
        keys = job_keys(job.name for job in self._jobs)
        self._records = {
            job.name: JobRecord(
                job,
                keys[job.name],
                log=layout.log_file(keys[job.name]),
                artifacts=layout.artifacts / f"{keys[job.name]}{SUFFIX}",
            )
            for job in self._jobs
        }
        self._nodes: dict[str, JobNode] = {job.name: job.node() for job in self._jobs}
        self._events: queue.SimpleQueue[_Done | None] = queue.SimpleQueue()
        self._work: queue.SimpleQueue[tuple[JobRun, JobOutput] | None] = queue.SimpleQueue()
        self._workers: list[threading.Thread] = []
        self._trash: queue.SimpleQueue[JobRun | None] = queue.SimpleQueue()
        self._janitor = threading.Thread(target=self._sweep, name="workspace janitor", daemon=True)
        self._running: dict[str, JobRun] = {}
        self._canceled = False
        self._layout = layout

    def cancel(self) -> None:
        """Ask the run to stop; safe from signal handlers and other threads."""
        self._events.put(_CANCEL)

    def run(self) -> RunResult:
        started = time.monotonic()
        self._janitor.start()
        while True:
            if not self._canceled:
                self._progress()
                self._start_ready()
            if not self._running and (self._canceled or not self._scheduled()):
                break
            for event in self._next_events():
                if event is None:  # _CANCEL
                    self._cancel_all()
                else:
                    self._finish(event)
        self._stop_workers()
        states = {name: record.state() for name, record in self._records.items()}
        return RunResult(
            status=build_status(self._nodes.values(), states),
            jobs=tuple(self._records.values()),
            canceled=self._canceled,
            run_dir=self._layout.root,
            duration=time.monotonic() - started,
        )

    def _next_events(self) -> list[_Done | None]:
        """Wait for the next event (or a delayed job's time), then take all that are queued.

        Handling a burst of finished jobs at once means one ``advance`` for all of them.
        """
        try:
            events = [self._events.get(timeout=self._wait_time())]
        except queue.Empty:
            return []
        while not self._events.empty():
            events.append(self._events.get_nowait())
        return events

    def _scheduled(self) -> list[JobRecord]:
        return [r for r in self._records.values() if r.status == JobStatus.SCHEDULED]

    def _wait_time(self) -> float | None:
        dues = [r.due for r in self._scheduled() if r.due is not None]
        return max(0.0, min(dues) - time.monotonic()) if dues else None

    def _progress(self) -> None:
        """Apply ``advance`` and start the clock of delayed jobs; promote those that are due."""
        states = {name: record.state() for name, record in self._records.items()}
        for name, status in advance(self._nodes, states).items():
            record = self._records[name]
            record.move(status)
            if status == JobStatus.MANUAL and name in self._options.play:
                self._console.line(f"▶ {name}: manual job played")
                record.move(JobStatus.PENDING)
            elif status == JobStatus.SCHEDULED:
                delay = record.spec.start_in or 0
                record.due = time.monotonic() + delay
                self._console.line(f"⏲ {name}: delayed, starts in {delay}s")
            elif status == JobStatus.SKIPPED:
                self._console.line(f"⏭ {name}: skipped", "2")
        now = time.monotonic()
        for record in self._scheduled():
            if record.due is not None and record.due <= now:
                record.move(JobStatus.PENDING)

    def _start_ready(self) -> None:
        busy = {run.request.spec.resource_group for run in self._running.values()}
        for record in self._records.values():
            if len(self._running) >= self._options.max_parallel:
                return
            group = record.spec.resource_group
            if record.status == JobStatus.PENDING and (group is None or group not in busy):
                self._start(record)
                busy.add(group)

    def _start(self, record: JobRecord) -> None:
        spec = record.spec
        sources = artifact_sources(spec, self._jobs)
        request = JobRequest(
            spec=spec,
            key=record.key,
            artifacts_from=tuple((n, self._records[n].key) for n in sources),
            manual=spec.name in self._options.play,
        )
        output = JobOutput(self._console, spec.name, record.log.open("wb", buffering=0))
        run = JobRun(request, self._site, output)
        record.move(JobStatus.RUNNING)
        record.started_at = datetime.now(UTC)
        self._running[spec.name] = run
        self._console.line(f"● {spec.name}: started (stage {spec.stage})")
        self._work.put((run, output))
        if len(self._workers) < len(self._running):
            worker = threading.Thread(
                target=self._worker, name=f"job worker {len(self._workers) + 1}", daemon=True
            )
            worker.start()
            self._workers.append(worker)

    def _worker(self) -> None:
        while (item := self._work.get()) is not None:
            run, output = item
            try:
                outcome = run.run()
            except Exception:  # a bug must not hang the run: the job fails, the run goes on
                outcome = JobOutcome(JobStatus.FAILED, None, SYSTEM_FAILURE, False, 1)
                with contextlib.suppress(Exception):
                    output.note("ERROR: internal error\n" + traceback.format_exc())
            finally:
                with contextlib.suppress(OSError):
                    output.close()
            self._events.put(_Done(run.request.spec.name, outcome))
            self._trash.put(run)  # removing a big tree takes a while: the next job need not wait

    def _sweep(self) -> None:
        while (run := self._trash.get()) is not None:
            run.discard_workspace()

    def _stop_workers(self) -> None:
        for _ in self._workers:
            self._work.put(None)
        for worker in self._workers:
            worker.join()
        self._trash.put(None)
        self._janitor.join()

    def _finish(self, done: _Done) -> None:
        record = self._records[done.name]
        outcome = done.outcome
        self._running.pop(done.name, None)
        record.finished_at = datetime.now(UTC)
        record.move(outcome.status)
        record.exit_code = outcome.exit_code
        record.failure_reason = outcome.failure_reason
        record.failure_allowed = outcome.failure_allowed
        record.attempts = outcome.attempts
        record.coverage = outcome.coverage
        self._console.line(*_finished_line(record))

    def _cancel_all(self) -> None:
        if self._canceled:
            self._console.line("still canceling: waiting for the running jobs to stop")
            return
        self._canceled = True
        self._console.line("canceling: stopping the running jobs")
        for run in self._running.values():
            run.cancel()
        for record in self._records.values():
            if record.status in _CANCELABLE:
                record.move(JobStatus.CANCELED)


def _finished_line(record: JobRecord) -> tuple[str, str]:
    """What to say when a job ends, and in which color (green, red, yellow, dim)."""
    took = f" in {record.duration:.1f}s" if record.duration is not None else ""
    tries = f", {record.attempts} attempts" if record.attempts > 1 else ""
    if record.coverage is not None:
        tries += f", coverage {record.coverage:g}%"
    if record.status == JobStatus.SUCCESS:
        return f"✔ {record.name}: passed{took}{tries}", "32"
    if record.status == JobStatus.CANCELED:
        return f"■ {record.name}: canceled{took}", "2"
    why = (
        f"exit code {record.exit_code}"
        if record.exit_code is not None
        else (record.failure_reason or "failed")
    )
    allowed = " (allowed to fail)" if record.failure_allowed else ""
    tone = "33" if record.failure_allowed else "31"
    return f"✘ {record.name}: failed{allowed}, {why}{took}{tries}", tone
