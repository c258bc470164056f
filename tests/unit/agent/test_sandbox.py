"""What only the sandbox executor does: confinement, a private /tmp, no network, limits.

The executor contract (output, failures, timeouts, cancel) is in ``test_executor_contract``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ferrous.agent.executor import Step
from ferrous.agent.sandbox import INSIDE_BUILDS, SandboxExecutor, SandboxLimits
from ferrous.domain.errors import ExecutionError
from tests.unit.agent.conftest import Collected
from tests.unit.agent.test_executor_contract import require_sandbox

#: The job runs as an unprivileged user, who may not reach a Python under /root (pyenv, uv).
SYSTEM_PYTHON = "/usr/bin/python3"
needs_python = pytest.mark.skipif(
    not os.access(SYSTEM_PYTHON, os.X_OK), reason=f"{SYSTEM_PYTHON} is missing"
)


@pytest.fixture
def sandbox(tmp_path: Path, workspace: Path) -> Iterator[Callable[..., SandboxExecutor]]:
    """Makes prepared sandbox executors (options as keywords), cleaned up after the test."""
    require_sandbox()
    made: list[SandboxExecutor] = []

    def make(**options: Any) -> SandboxExecutor:
        executor = SandboxExecutor(
            scratch_dir=tmp_path / "scratch", label=f"s{len(made)}", kill_grace=0.5, **options
        )
        executor.prepare(workspace)
        made.append(executor)
        return executor

    yield make
    for executor in made:
        executor.cleanup()


def step(*commands: str, timeout: float | None = 20, **variables: str) -> Step:
    return Step(name="script", commands=commands, variables=variables, timeout=timeout)


def test_the_system_is_read_only(sandbox: Callable[..., SandboxExecutor], sink: Collected) -> None:
    name = f"ferrous-{uuid.uuid4().hex}"
    executor = sandbox()
    for target in (f"/etc/{name}", f"/root/{name}", f"/usr/{name}"):
        result = executor.run(step(f"touch {target}"), sink)
        assert result.exit_code not in (0, None), target
        assert not os.path.exists(target)


def test_tmp_is_private(sandbox: Callable[..., SandboxExecutor], sink: Collected) -> None:
    name = f"/tmp/ferrous-{uuid.uuid4().hex}"
    result = sandbox().run(step(f"echo secret > {name}", f"cat {name}"), sink)
    assert result.ok
    assert "secret" in sink.text
    assert not os.path.exists(name)


def test_the_workspace_is_shared_with_the_host(
    sandbox: Callable[..., SandboxExecutor], sink: Collected, workspace: Path
) -> None:
    (workspace / "in.txt").write_text("from the host\n")
    executor = sandbox()
    result = executor.run(
        step(
            "cat in.txt",
            "mkdir -p out && echo from the job > out/made.txt",
            'echo "$PWD $CI_PROJECT_DIR $OUT $CI_BUILDS_DIR"',
            CI_PROJECT_DIR=str(workspace),
            OUT=f"{workspace}/out",
            CI_BUILDS_DIR=str(workspace.parent),
        ),
        sink,
    )
    assert result.ok, sink.text
    assert "from the host" in sink.text
    assert (workspace / "out" / "made.txt").read_text() == "from the job\n"
    inside = f"{INSIDE_BUILDS}/{workspace.name}"
    assert f"{inside} {inside} {inside}/out {INSIDE_BUILDS}\n" in sink.text
    assert executor.inside_workspace.as_posix() == inside


@pytest.fixture
def server() -> Iterator[int]:
    """A TCP server on 127.0.0.1 that accepts connections; yields its port."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                listener.accept()[0].close()
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    listener.close()


@pytest.mark.parametrize(("network", "reaches"), [(True, True), (False, False)])
def test_network_can_be_unshared(
    sandbox: Callable[..., SandboxExecutor],
    sink: Collected,
    server: int,
    network: bool,
    reaches: bool,
) -> None:
    result = sandbox(network=network).run(
        step(f"exec 3<>/dev/tcp/127.0.0.1/{server}", "echo connected"), sink
    )
    assert result.ok is reaches, sink.text
    assert ("connected" in sink.text) is reaches


FORK_LOOP = """
import os, time
n = 0
for _ in range(500):
    try:
        pid = os.fork()
    except OSError:
        break
    if pid == 0:
        time.sleep(30)
        os._exit(0)
    n += 1
print("forked", n, flush=True)
"""


@needs_python
def test_the_process_limit_stops_a_fork_bomb(
    sandbox: Callable[..., SandboxExecutor], sink: Collected, workspace: Path
) -> None:
    (workspace / "bomb.py").write_text(FORK_LOOP)
    limits = SandboxLimits(processes=64)
    started = time.monotonic()
    result = sandbox(limits=limits).run(step(f"{SYSTEM_PYTHON} bomb.py"), sink)
    assert time.monotonic() - started < 10
    assert result.ok, sink.text
    forked = int(sink.text.split("forked ", 1)[1].split()[0])
    assert forked < 64


@needs_python
def test_the_memory_limit_fails_a_large_allocation(
    sandbox: Callable[..., SandboxExecutor], sink: Collected
) -> None:
    allocate = f'{SYSTEM_PYTHON} -c "b = bytearray(1 << 30); print(len(b))"'
    small = sandbox(limits=SandboxLimits(address_space=256 << 20)).run(step(allocate), sink)
    assert small.exit_code == 1
    assert "MemoryError" in sink.text
    assert sandbox().run(step(allocate), sink).ok  # the default limit allows 1 GiB


def test_cancel_kills_everything_inside(
    sandbox: Callable[..., SandboxExecutor], sink: Collected
) -> None:
    seconds = f"600.{uuid.uuid4().int % 10**9}"  # a unique command line to look for
    executor = sandbox()
    timer = threading.Timer(0.5, executor.cancel)
    timer.start()
    result = executor.run(
        step(
            f"sleep {seconds} &",
            f"setsid sleep {seconds} &",  # left the process group: only the namespace catches it
            f"bash -c 'sleep {seconds}; true' &",
            f"sleep {seconds}",
            timeout=None,
        ),
        sink,
    )
    timer.join()
    assert result.canceled
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        left = subprocess.run(["pgrep", "-f", f"sleep {seconds}"], capture_output=True, check=False)
        if left.returncode == 1:
            break
        time.sleep(0.05)
    assert left.returncode == 1, f"left behind: {left.stdout.decode()}"


def test_a_missing_bwrap_is_a_clear_error(
    tmp_path: Path, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    executor = SandboxExecutor(scratch_dir=tmp_path / "scratch")
    with pytest.raises(ExecutionError, match="bwrap"):
        executor.prepare(workspace)
