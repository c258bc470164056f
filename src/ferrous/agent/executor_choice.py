"""Which executor runs an agent's jobs: the plain shell, or the shell inside a sandbox.

The choice is the agent owner's, made once at start-up (``--executor``, ``--no-network``): a
trusted agent on a build machine may run jobs as plain child processes; one that runs code
from strangers (forks, merge requests) should not. ``ExecutorChoice.problem`` is asked before
the agent takes its first job, so a machine without bubblewrap refuses to start instead of
failing every job it claims.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Literal, NamedTuple, get_args

from ferrous.agent.executor import Executor
from ferrous.agent.sandbox import SandboxExecutor, sandbox_problem
from ferrous.agent.shell import ShellExecutor

ExecutorKind = Literal["shell", "sandbox"]
EXECUTOR_KINDS: tuple[str, ...] = get_args(ExecutorKind)


class ExecutorChoice(NamedTuple):
    kind: ExecutorKind = "shell"
    network: bool = True  # sandbox only: False gives the job no network at all

    @classmethod
    def parse(cls, kind: str, *, network: bool = True) -> ExecutorChoice:
        """The choice named on a command line; ``ValueError`` names the valid kinds."""
        if kind not in EXECUTOR_KINDS:
            choices = ", ".join(EXECUTOR_KINDS)
            raise ValueError(f"unknown executor {kind!r}: choose one of {choices}")
        if kind == "shell" and not network:
            raise ValueError("--no-network needs the sandbox executor (--executor sandbox)")
        return cls(kind, network)  # type: ignore[arg-type]  # checked against EXECUTOR_KINDS

    def problem(self) -> str | None:
        """Why this executor cannot run on this machine, or None."""
        return sandbox_problem() if self.kind == "sandbox" else None

    def describe(self) -> str:
        """The words the job log shows: ``shell executor``, ``sandbox executor, no network``."""
        words = f"{self.kind} executor"
        return words if self.network else words + ", no network"

    def factory(self, *, scratch_dir: Path, kill_grace: float) -> Callable[[str], Executor]:
        """A new executor per job attempt (``JobSite.executor``), labelled with its key."""
        if self.kind == "sandbox":
            network = self.network
            return lambda key: SandboxExecutor(
                scratch_dir=scratch_dir, label=key, kill_grace=kill_grace, network=network
            )
        return lambda key: ShellExecutor(scratch_dir=scratch_dir, label=key, kill_grace=kill_grace)
