"""The executor contract: how a job's scripts run somewhere (a shell here, a container later).

An executor knows nothing of pipelines, retries, artifacts or caches: the job runner does
those around it, the same way for every executor. That keeps each executor small and lets one
contract test suite hold all of them to the same behaviour.

Lifecycle of one executor instance, which serves one attempt of one job:

1. ``prepare(workspace)`` once, before anything else: get ready to run in that folder (the
   shell executor checks its shell; a container executor would start its container).
2. ``run(step, output)`` for each step, one at a time, in order: ``script`` (``before_script``
   and ``script`` in one shell, stopping at the first failing command), then ``after_script``.
   ``run`` blocks until the step's processes are gone and all of their output was written to
   ``output``; it never raises for a failing script, it reports it in the ``StepResult``.
3. ``cleanup()`` once, always, even after a failure, a timeout or a cancel: nothing the
   executor started may outlive it.

``cancel()`` is the only method that may be called from another thread, at any time, any
number of times: it makes the running step (if any) stop soon, by killing its whole process
tree, and makes every later ``run`` return at once as canceled. Everything else is called from
one thread.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple, Protocol


class OutputSink(Protocol):
    """Where a step's output goes, as raw bytes in whatever chunks the process wrote them."""

    def write(self, data: bytes) -> None: ...


# Small immutable records are NamedTuples across the agent: one costs a fifth of a dataclass
# to define, and start-up time is part of every `ferrous run`.


class Step(NamedTuple):
    """One shell session of a job: its commands, the variables it sees and its time limit."""

    name: str  # "script" or "after_script", as GitLab names the stages of a job
    commands: tuple[str, ...]
    variables: Mapping[str, str] = {}
    timeout: float | None = None  # seconds; None waits for ever


class StepResult(NamedTuple):
    exit_code: int | None  # None when the step was killed (timeout or cancel)
    timed_out: bool = False
    canceled: bool = False

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out and not self.canceled


class Executor(Protocol):
    """Runs the steps of one job attempt; see the module docstring for the call order."""

    name: str  # shown in the job log ("shell", "docker", ...)

    def prepare(self, workspace: Path) -> None: ...

    def run(self, step: Step, output: OutputSink) -> StepResult: ...

    def cancel(self) -> None: ...

    def cleanup(self) -> None: ...
