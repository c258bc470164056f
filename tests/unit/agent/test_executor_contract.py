"""The contract every executor keeps (see ``ferrous.agent.executor``), with real processes.

Parametrized over the executors: a new executor joins ``EXECUTORS`` and must pass them all.
The sandbox case skips where bubblewrap cannot run, and fails there instead when
``FERROUS_REQUIRE_SANDBOX=1`` (CI sets it). Leftover processes are found by a marker variable
in their environment, not by pid: inside the sandbox's PID namespace ``$!`` is not a host pid.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ferrous.agent.executor import Executor, Step
from ferrous.agent.sandbox import SandboxExecutor, sandbox_problem
from ferrous.agent.shell import ShellExecutor, render_script
from tests.unit.agent.conftest import Collected

GRACE = 0.5
EXECUTORS: dict[str, Callable[[Path], Executor]] = {
    "shell": lambda scratch: ShellExecutor(scratch_dir=scratch, label="t", kill_grace=GRACE),
    "sandbox": lambda scratch: SandboxExecutor(scratch_dir=scratch, label="t", kill_grace=GRACE),
}
MARKER = "FERROUS_TEST_MARKER"


def require_sandbox() -> None:
    """Skip when bubblewrap cannot run here, or fail if the environment demands a sandbox."""
    problem = sandbox_problem()
    if problem is None:
        return
    if os.environ.get("FERROUS_REQUIRE_SANDBOX") == "1":
        pytest.fail(f"FERROUS_REQUIRE_SANDBOX=1 but {problem}")
    pytest.skip(problem)


def make_executor(kind: str, scratch: Path) -> Executor:
    if kind == "sandbox":
        require_sandbox()
    return EXECUTORS[kind](scratch)


@pytest.fixture(params=sorted(EXECUTORS))
def executor(request: pytest.FixtureRequest, tmp_path: Path, workspace: Path) -> Iterator[Executor]:
    made = make_executor(request.param, tmp_path / "scratch")
    made.prepare(workspace)
    yield made
    made.cleanup()


def step(*commands: str, timeout: float | None = 10, **variables: str) -> Step:
    return Step(name="script", commands=commands, variables=variables, timeout=timeout)


def process_gone(pid: int) -> bool:
    """Dead or a zombie (a zombie is dead, only not yet reaped by its new parent)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


@pytest.fixture
def marker() -> str:
    return uuid.uuid4().hex


def marked(marker: str) -> list[int]:
    """Live processes whose environment carries ``FERROUS_TEST_MARKER=marker``."""
    needle = f"\0{MARKER}={marker}\0".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as environ:
                if needle in b"\0" + environ.read() and not process_gone(int(entry)):
                    found.append(int(entry))
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return found


def wait_none_marked(marker: str, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not marked(marker):
            return True
        time.sleep(0.02)
    return not marked(marker)


def test_output_and_success(executor: Executor, sink: Collected) -> None:
    result = executor.run(step("echo hello", "echo world >&2"), sink)
    assert result.ok
    assert result.exit_code == 0
    assert sink.text == "$ echo hello\nhello\n$ echo world >&2\nworld\n"


def test_stops_at_the_first_failing_command(executor: Executor, sink: Collected) -> None:
    result = executor.run(step("echo one", "exit 3", "echo two"), sink)
    assert result.exit_code == 3
    assert not result.ok
    assert sink.text == "$ echo one\none\n$ exit 3\n"


def test_a_failing_command_inside_a_line_fails_the_step(
    executor: Executor, sink: Collected
) -> None:
    result = executor.run(step("false; echo after", "echo next"), sink)
    assert result.exit_code == 1
    assert sink.text == "$ false; echo after\n"


def test_pipefail(executor: Executor, sink: Collected) -> None:
    result = executor.run(step("false | true", "echo reached"), sink)
    assert result.exit_code == 1
    assert sink.text == "$ false | true\n"


def test_multi_line_commands_and_variables(
    executor: Executor, sink: Collected, workspace: Path
) -> None:
    (workspace / "source.txt").write_text("from the host\n")
    script = 'if [ "$GREETING" = hi ]; then\n  echo "said $GREETING in $PWD"\nfi'
    result = executor.run(
        step(
            script,
            "cat source.txt",
            'echo "project $CI_PROJECT_DIR"',
            GREETING="hi",
            CI_PROJECT_DIR=str(workspace),
        ),
        sink,
    )
    assert result.ok
    said = sink.text.split("said hi in ", 1)[1].split("\n", 1)[0]
    assert f"project {said}\n" in sink.text  # the job sees CI_PROJECT_DIR as its cwd
    assert "from the host" in sink.text
    if executor.name == "shell":
        assert said == str(workspace)
    assert "$ if [" in sink.text


def test_quotes_in_commands_are_echoed_verbatim() -> None:
    script = render_script(("echo 'it''s' \"$X\"",))
    assert "printf '%s\\n' '$ echo '\\''it'\\'''\\''s'\\'' \"$X\"'" in script


def test_stdin_is_empty(executor: Executor, sink: Collected) -> None:
    result = executor.run(step("cat", "echo done", timeout=5), sink)
    assert result.ok
    assert "done" in sink.text


def test_timeout_kills_the_whole_process_tree(
    executor: Executor, sink: Collected, marker: str
) -> None:
    started = time.monotonic()
    result = executor.run(step("sleep 60 &", "sleep 60", timeout=0.5, **{MARKER: marker}), sink)
    took = time.monotonic() - started
    assert result.timed_out
    assert result.exit_code is None
    assert not result.ok
    assert took < 0.5 + GRACE + 2
    assert wait_none_marked(marker, 2), "the background sleep outlived the timeout"


def test_a_process_ignoring_sigterm_is_killed_after_the_grace_period(
    executor: Executor, sink: Collected
) -> None:
    started = time.monotonic()
    result = executor.run(step("trap '' TERM; sleep 60 & wait", timeout=0.3), sink)
    took = time.monotonic() - started
    assert result.timed_out
    assert 0.3 + GRACE - 0.05 <= took < 0.3 + GRACE + 2


def test_background_processes_do_not_keep_the_step_alive(
    executor: Executor, sink: Collected, marker: str
) -> None:
    started = time.monotonic()
    result = executor.run(step("sleep 60 &", "echo done", **{MARKER: marker}), sink)
    assert result.ok
    assert time.monotonic() - started < GRACE + 2
    assert wait_none_marked(marker, 2)


def test_cancel_from_another_thread(executor: Executor, sink: Collected, marker: str) -> None:
    timer = threading.Timer(0.3, executor.cancel)
    timer.start()
    started = time.monotonic()
    result = executor.run(step("sleep 60", timeout=None, **{MARKER: marker}), sink)
    timer.join()
    assert result.canceled
    assert result.exit_code is None
    assert time.monotonic() - started < 0.3 + GRACE + 2
    assert wait_none_marked(marker, 2), "the shell or its sleep outlived the cancel"
    again = executor.run(step("echo never"), sink)
    assert again.canceled
    assert "never" not in sink.text


def test_large_output_arrives_complete(executor: Executor, sink: Collected) -> None:
    result = executor.run(step("seq 1 200000"), sink)
    assert result.ok
    lines = sink.text.splitlines()
    assert lines[1] == "1"
    assert lines[-1] == "200000"
    assert len(lines) == 200001


@pytest.mark.parametrize("kind", sorted(EXECUTORS))
def test_cleanup_leaves_no_scripts(
    kind: str, tmp_path: Path, workspace: Path, sink: Collected
) -> None:
    scratch = tmp_path / "scratch"
    executor = make_executor(kind, scratch)
    executor.prepare(workspace)
    executor.run(step("true"), sink)
    assert os.listdir(scratch)
    executor.cleanup()
    assert not os.listdir(scratch)
