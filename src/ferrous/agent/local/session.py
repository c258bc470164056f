"""One local run of a checkout's jobs: folders, stores, executor and scheduler wired together.

This is ``ferrous run`` minus the command line: given the jobs to run, it lays out the run
folder, lists the source once, runs the pipeline with the chosen executor (shell by default),
turns SIGINT and SIGTERM into a cancel while it runs, cleans up, and prints the summary.
"""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import BinaryIO

from ferrous.agent.artifacts import LocalArtifactStore
from ferrous.agent.cache import LocalCacheStore
from ferrous.agent.executor_choice import ExecutorChoice
from ferrous.agent.job_runner import JobSite
from ferrous.agent.local.layout import RunLayout, state_dir
from ferrous.agent.local.pipeline_runner import PipelineRunner, RunOptions
from ferrous.agent.local.records import RunResult
from ferrous.agent.local.summary import summary_table
from ferrous.agent.logs import Console, wants_color
from ferrous.agent.workspace import SourceTree
from ferrous.domain.statuses import JobStatus
from ferrous.pipeline_config.plan import JobSpec

#: SIGTERM, then SIGKILL after this many seconds, for timed-out and canceled jobs.
KILL_GRACE = 5.0
#: Job names wider than this do not widen every line's prefix.
MAX_PREFIX_WIDTH = 30


class LocalSession:
    """Set up in ``__init__`` (the run folder exists from then on), then ``run`` once."""

    def __init__(
        self,
        checkout: Path,
        jobs: Sequence[JobSpec],
        *,
        stream: BinaryIO,
        max_parallel: int | None = None,
        play: frozenset[str] = frozenset(),
        keep_workspaces: bool = False,
        kill_grace: float = KILL_GRACE,
        executor: ExecutorChoice = ExecutorChoice(),  # noqa: B008  # immutable
    ) -> None:
        state = state_dir(checkout)
        self.layout = RunLayout.create(state / "runs")
        self.max_parallel = max_parallel or os.cpu_count() or 1
        self._keep = keep_workspaces
        scratch = self.layout.scratch
        site = JobSite(
            source=SourceTree.scan(checkout, skip=[state]),
            builds_dir=self.layout.builds,
            artifacts=LocalArtifactStore(self.layout.artifacts),
            caches=LocalCacheStore(state / "cache"),
            executor=executor.factory(scratch_dir=scratch, kill_grace=kill_grace),
            keep_workspaces=keep_workspaces,
        )
        width = min(max((len(job.name) for job in jobs), default=0), MAX_PREFIX_WIDTH)
        self.console = Console(stream, color=wants_color(stream), name_width=width)
        self._runner = PipelineRunner(
            jobs,
            site=site,
            layout=self.layout,
            console=self.console,
            options=RunOptions(max_parallel=self.max_parallel, play=play),
        )

    def run(self) -> RunResult:
        """Run to the end (or to a cancel), then clean up and print the summary."""
        with _cancel_on_signals(self._runner):
            result = self._runner.run()
        if not self._keep:
            shutil.rmtree(self.layout.builds, ignore_errors=True)
        shutil.rmtree(self.layout.scratch, ignore_errors=True)
        self.console.line("\n" + summary_table(result))
        for record in result.jobs:
            if record.status == JobStatus.MANUAL:
                self.console.line(
                    f"note: manual job {record.name!r} was not run (--manual to play it)"
                )
        return result


@contextmanager
def _cancel_on_signals(runner: PipelineRunner) -> Iterator[None]:
    """Ctrl-C and SIGTERM cancel the run instead of killing this process mid-way.

    Signal handlers can only be set from the main thread; elsewhere (a test driving the
    session from a thread) the run is simply not cancellable by signals.
    """

    def handler(signum: int, frame: FrameType | None) -> None:
        runner.cancel()

    try:
        previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:  # not the main thread
        previous = {}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
