"""The agent owner's choice of executor: parsed from the command line, made into executors."""

from __future__ import annotations

from pathlib import Path

import pytest

from ferrous.agent.executor_choice import ExecutorChoice
from ferrous.agent.sandbox import SandboxExecutor
from ferrous.agent.shell import ShellExecutor


def test_the_default_is_the_plain_shell(tmp_path: Path) -> None:
    choice = ExecutorChoice()
    assert choice.describe() == "shell executor"
    assert choice.problem() is None
    made = choice.factory(scratch_dir=tmp_path, kill_grace=2.0)("job-1")
    assert type(made) is ShellExecutor


def test_sandbox_without_network(tmp_path: Path) -> None:
    choice = ExecutorChoice.parse("sandbox", network=False)
    assert choice.describe() == "sandbox executor, no network"
    made = choice.factory(scratch_dir=tmp_path, kill_grace=2.0)("job-1")
    assert isinstance(made, SandboxExecutor)
    assert made.network is False


@pytest.mark.parametrize(
    ("kind", "network", "message"),
    [
        ("docker", True, "unknown executor 'docker': choose one of shell, sandbox"),
        ("shell", False, "--no-network needs the sandbox executor"),
    ],
)
def test_bad_choices_say_what_is_wrong(kind: str, network: bool, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ExecutorChoice.parse(kind, network=network)
