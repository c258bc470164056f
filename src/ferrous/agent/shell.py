"""The shell executor: each step is one bash session on this machine, as GitLab's shell runner.

The generated script mirrors what gitlab-runner feeds bash: ``set -eo pipefail`` so that the
first failing command (or pipeline stage) ends the step with its exit code, and every command
echoed as ``$ command`` before it runs, so the log shows what failed. Commands are written
verbatim, so multi-line commands (``- |`` blocks) and shell syntax work as in GitLab.

Variables reach the shell through its environment, on top of this process's own (a shell
runner inherits the environment it was started in: PATH, HOME, ...). The script is written
outside the workspace (in ``scratch_dir``, named after ``label``), so that it never shows up
among the job's files or artifacts.
"""

from __future__ import annotations

import functools
import os
import shutil
import threading
from collections.abc import Mapping
from pathlib import Path

from ferrous.agent.executor import OutputSink, Step, StepResult
from ferrous.agent.process import ProcessGroup
from ferrous.domain.errors import ExecutionError

PRELUDE = "set -eo pipefail\nset +o noclobber\n"


def shell_quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def render_script(commands: tuple[str, ...]) -> str:
    """The bash script of one step: each command echoed, then run, stopping at a failure."""
    parts = [PRELUDE]
    for command in commands:
        parts.append(f"printf '%s\\n' {shell_quote('$ ' + command)}\n")
        parts.append(command if command.endswith("\n") else command + "\n")
    return "".join(parts)


@functools.lru_cache(maxsize=8)
def _which(name: str) -> str | None:
    return shutil.which(name)


class ShellExecutor:
    """Runs steps with bash in the workspace; see ``ferrous.agent.executor`` for the contract."""

    name = "shell"

    def __init__(
        self,
        *,
        scratch_dir: Path,
        label: str = "job",
        kill_grace: float = 5.0,
        shell: str = "bash",
    ) -> None:
        self._scratch = scratch_dir
        self._label = label
        self._scripts: list[Path] = []
        self._grace = kill_grace
        self._shell_name = shell
        self._shell: str | None = None
        self._workspace: Path | None = None
        self._lock = threading.Lock()
        self._canceled = False
        self._current: ProcessGroup | None = None

    def prepare(self, workspace: Path) -> None:
        self._shell = _which(self._shell_name)
        if self._shell is None:
            raise ExecutionError(f"the shell executor needs {self._shell_name}, not found on PATH")
        self._workspace = workspace
        self._scratch.mkdir(parents=True, exist_ok=True)

    def run(self, step: Step, output: OutputSink) -> StepResult:
        if self._shell is None or self._workspace is None:
            raise ExecutionError("ShellExecutor.run called before prepare")
        script = self._scratch / f"{self._label}.{step.name}.sh"
        script.write_text(render_script(step.commands), encoding="utf-8")
        self._scripts.append(script)
        env = self._environment(step.variables)
        argv = self._command(self._shell, script)
        with self._lock:
            if self._canceled:
                return StepResult(None, canceled=True)
            try:
                group = ProcessGroup(argv, cwd=self._workspace, env=env, kill_grace=self._grace)
            except OSError as exc:
                raise ExecutionError(f"cannot start {self._shell}: {exc}") from exc
            self._current = group
        try:
            outcome = group.pump(output, timeout=step.timeout)
        finally:
            with self._lock:
                self._current = None
        if outcome.timed_out:
            return StepResult(None, timed_out=True)
        if outcome.terminated:
            return StepResult(None, canceled=True)
        return StepResult(outcome.returncode)

    # Hooks for executors that run the same scripts another way (``SandboxExecutor``).

    def _command(self, shell: str, script: Path) -> list[str]:
        """The argv that runs ``script`` (already written) with ``shell``."""
        return [shell, "--noprofile", "--norc", str(script)]

    def _environment(self, variables: Mapping[str, str]) -> dict[str, str]:
        """The shell's environment: this process's own, under the step's variables."""
        return {**os.environ, **variables}

    def cancel(self) -> None:
        with self._lock:
            self._canceled = True
            current = self._current
        if current is not None:
            current.terminate()

    def cleanup(self) -> None:
        with self._lock:
            current = self._current
        if current is not None:  # only when run() was interrupted by an exception
            current.terminate()
        for script in self._scripts:
            script.unlink(missing_ok=True)
