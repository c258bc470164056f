"""Remote agents: real ``ferrous agent`` processes against a real ``ferrous serve --agents 0``.

Label routing, capacity, cancellation reaching the job's processes, the saved identity,
failover between server URLs, an agent killed mid-job (lease expiry and
``runner_system_failure`` retries), graceful stops and the sandbox executor, on SQLite and
PostgreSQL.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import git_repo
from tests.e2e.server_process import ServerProcess, wait_for_build
from tests.unit.agent.test_executor_contract import require_sandbox

pytestmark = pytest.mark.e2e

TOKEN = "e2e-registration-token"
LEASE_TIMEOUT = 3.0


class AgentProcess:
    def __init__(
        self,
        work_dir: Path,
        servers: list[str],
        *,
        labels: str = "",
        capacity: int = 1,
        options: tuple[str, ...] = (),
    ):
        self.work_dir = work_dir
        self.argv = [sys.executable, "-m", "ferrous", "agent", "--server", ",".join(servers)]
        self.argv += ["--labels", labels, "--capacity", str(capacity)]
        self.argv += ["--work-dir", str(work_dir), "--name", work_dir.name, "--kill-grace", "1"]
        self.argv += options
        self.log = work_dir.parent / f"{work_dir.name}.log"
        self.proc: subprocess.Popen[str] | None = None

    def start(self, *, token: str | None = TOKEN) -> AgentProcess:
        argv = self.argv + (["--token", token] if token else [])
        env = {k: v for k, v in os.environ.items() if k != "FERROUS_AGENT_REGISTRATION_TOKEN"}
        with self.log.open("a") as log:
            self.proc = subprocess.Popen(
                argv, env=env, stdout=subprocess.PIPE, stderr=log, text=True
            )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert "running" in line, f"agent did not start: {line!r}\n{self.log.read_text()[-3000:]}"
        return self

    @property
    def identity(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.work_dir / "agent.json").read_text())
        return data

    @property
    def agent_id(self) -> str:
        return str(self.identity["agent_id"])

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 30.0) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for pid in _processes_in(self.work_dir):  # jobs orphaned by a kill -9
            os.kill(pid, signal.SIGKILL)


def _processes_in(folder: Path) -> list[int]:
    """Processes whose working directory is inside ``folder`` (a job's shell, its sleep)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cwd = Path(os.readlink(entry / "cwd"))
            except OSError:
                continue
            if cwd.is_relative_to(folder):
                found.append(int(entry.name))
    return found


def _descendants(pid: int) -> list[str]:
    """Command lines of every process below ``pid``."""
    children: dict[int, list[int]] = {}
    commands: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            commands[int(entry.name)] = (
                (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            )
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    out, todo = [], list(children.get(pid, []))
    while todo:
        child = todo.pop()
        out.append(commands.get(child, ""))
        todo.extend(children.get(child, []))
    return out


@pytest.fixture
def remote_server(tmp_path: Path, backend_env: dict[str, str]) -> Iterator[ServerProcess]:
    env = {
        **backend_env,
        "FERROUS_AGENT_REGISTRATION_TOKEN": TOKEN,
        "FERROUS_LEASE_TIMEOUT": str(LEASE_TIMEOUT),
    }
    process = ServerProcess(tmp_path / "data", agents=0, env=env).start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def agents(tmp_path: Path, remote_server: ServerProcess) -> Iterator[Callable[..., AgentProcess]]:
    started: list[AgentProcess] = []

    def start(name: str, **options: Any) -> AgentProcess:
        servers = options.pop("servers", [remote_server.url])
        token = options.pop("token", TOKEN)
        agent = AgentProcess(tmp_path / name, servers, **options)
        started.append(agent)
        return agent.start(token=token)

    try:
        yield start
    finally:
        for agent in started:
            agent.stop()


def _trigger(server: ServerProcess, tmp_path: Path, pipeline: str) -> tuple[httpx.Client, str]:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / ".gitlab-ci.yml").write_text(pipeline)
    git_repo(repo)
    client = server.client()
    client.post("/projects", json={"name": "app", "repo_url": str(repo)}).raise_for_status()
    build = client.post("/projects/app/builds", json={}).raise_for_status().json()
    return client, str(build["id"])


def _jobs(client: httpx.Client, build_id: str) -> dict[str, dict[str, Any]]:
    build = client.get(f"/builds/{build_id}").raise_for_status().json()
    return {job["name"]: job for job in build["jobs"]}


def _wait_running(client: httpx.Client, build_id: str, name: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        job = _jobs(client, build_id)[name]
        if job["status"] == "running":
            return job
        time.sleep(0.05)
    raise AssertionError(f"{name} did not start: {job}")


def _wait_until(check: Callable[[], bool], timeout: float) -> float:
    """Seconds until ``check()`` held; fails after ``timeout``."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < timeout, "timed out"
        time.sleep(0.05)
    return time.monotonic() - started


def test_labels_route_jobs(
    agents: Callable[..., AgentProcess], remote_server: ServerProcess, tmp_path: Path
) -> None:
    plain = agents("plain", labels="linux", capacity=2)
    gpu = agents("gpu", labels="gpu,linux", capacity=2)
    pipeline = "gpu-job:\n  tags: [gpu]\n  script: [sleep 0.3]\n"
    pipeline += "".join(f"any-{n}:\n  script: [sleep 0.3]\n" for n in range(4))
    client, build_id = _trigger(remote_server, tmp_path, pipeline)
    build = wait_for_build(client, build_id)
    assert build["status"] == "success", build
    jobs = {job["name"]: job for job in build["jobs"]}
    assert jobs["gpu-job"]["agent_id"] == gpu.agent_id
    assert {job["agent_id"] for job in jobs.values()} <= {plain.agent_id, gpu.agent_id}


def test_capacity_is_honoured(
    agents: Callable[..., AgentProcess], remote_server: ServerProcess, tmp_path: Path
) -> None:
    agents("pair", capacity=2)
    pipeline = "".join(f"job-{n}:\n  script: [sleep 1]\n" for n in range(5))
    client, build_id = _trigger(remote_server, tmp_path, pipeline)
    build = wait_for_build(client, build_id)
    assert build["status"] == "success", build
    moments = []
    for job in build["jobs"]:
        moments.append((datetime.fromisoformat(job["started_at"]), 1))
        moments.append((datetime.fromisoformat(job["finished_at"]), -1))
    running = most = 0
    for _, change in sorted(moments):  # at the same instant, an end (-1) sorts first
        running += change
        most = max(most, running)
    assert most == 2, build["jobs"]


def test_cancel_reaches_the_running_job(
    agents: Callable[..., AgentProcess], remote_server: ServerProcess, tmp_path: Path
) -> None:
    agent = agents("solo")
    client, build_id = _trigger(remote_server, tmp_path, "slow:\n  script: [sleep 60]\n")
    _wait_running(client, build_id, "slow")
    assert agent.proc is not None
    pid = agent.proc.pid
    _wait_until(lambda: any("sleep 60" in c for c in _descendants(pid)), 10)
    client.post(f"/builds/{build_id}/cancel").raise_for_status()
    took = _wait_until(lambda: not any("sleep" in c for c in _descendants(pid)), 5)
    assert took < 2.0, f"the job's processes lived {took:.1f}s after the cancel"
    assert _jobs(client, build_id)["slow"]["status"] == "canceled"
    assert agent.proc.poll() is None  # the agent lives on


def test_identity_is_private_and_reused(
    agents: Callable[..., AgentProcess], remote_server: ServerProcess, tmp_path: Path
) -> None:
    agent = agents("keeper", labels="x")
    path = agent.work_dir / "agent.json"
    assert path.stat().st_mode & 0o777 == 0o600
    first = agent.identity
    agent.signal(signal.SIGTERM)
    assert agent.wait() == 0
    agent.start(token=None)  # no registration token: it must not need one
    assert agent.identity == first
    client = remote_server.client()
    assert [a["id"] for a in client.get("/agents").json()["items"]] == [first["agent_id"]]
    client, build_id = _trigger(remote_server, tmp_path, "one:\n  tags: [x]\n  script: [echo ok]\n")
    build = wait_for_build(client, build_id)
    assert build["jobs"][0]["agent_id"] == first["agent_id"]
    agent.signal(signal.SIGTERM)
    agent.wait()
    path.write_text(json.dumps({**first, "token": "not-the-token"}))
    agent.start(token=None)  # it starts, then its first claim is refused
    assert agent.wait() == 1
    assert "refused the agent token stored in" in agent.log.read_text()


def test_fails_over_to_the_next_server_url(
    agents: Callable[..., AgentProcess], remote_server: ServerProcess, tmp_path: Path
) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    agents("failover", servers=[dead, remote_server.url])
    client, build_id = _trigger(remote_server, tmp_path, "one:\n  script: [echo ok]\n")
    assert wait_for_build(client, build_id)["status"] == "success"


@pytest.mark.parametrize("retried", [True, False], ids=["retry", "no-retry"])
def test_killed_agent_loses_its_job(
    retried: bool, agents: Callable[..., AgentProcess], remote_server: ServerProcess, tmp_path: Path
) -> None:
    retry = "  retry:\n    max: 1\n    when: [runner_system_failure]\n" if retried else ""
    doomed = agents("doomed")
    client, build_id = _trigger(remote_server, tmp_path, f"work:\n  script: [sleep 3]\n{retry}")
    job = _wait_running(client, build_id, "work")
    assert job["agent_id"] == doomed.agent_id
    survivor = agents("survivor")
    doomed.signal(signal.SIGKILL)
    killed = time.monotonic()
    if retried:
        _wait_until(lambda: _jobs(client, build_id)["work"]["attempt"] == 2, LEASE_TIMEOUT + 4)
        build = wait_for_build(client, build_id)
        assert build["status"] == "success", build
        detail = client.get(f"/jobs/{job['id']}").json()
        assert [a["agent_id"] for a in detail["attempts"]] == [doomed.agent_id, survivor.agent_id]
        assert detail["attempts"][0]["failure_reason"] == "runner_system_failure"
    else:
        build = wait_for_build(client, build_id, timeout=LEASE_TIMEOUT + 4)
        assert build["status"] == "failed", build
        assert build["jobs"][0]["failure_reason"] == "runner_system_failure"
    assert time.monotonic() - killed < LEASE_TIMEOUT + 4 + (3 if retried else 0)


def test_sigterm_lets_the_running_job_finish(
    agents: Callable[..., AgentProcess], remote_server: ServerProcess, tmp_path: Path
) -> None:
    agent = agents("graceful")
    client, build_id = _trigger(remote_server, tmp_path, "work:\n  script: [sleep 2, echo done]\n")
    _wait_running(client, build_id, "work")
    agent.signal(signal.SIGTERM)
    assert agent.wait() == 0
    build = wait_for_build(client, build_id, timeout=5)
    assert build["status"] == "success", build
    assert "done" in client.get(f"/jobs/{build['jobs'][0]['id']}/log").text


def test_second_sigterm_cancels_the_running_job(
    agents: Callable[..., AgentProcess], remote_server: ServerProcess, tmp_path: Path
) -> None:
    agent = agents("impatient")
    client, build_id = _trigger(remote_server, tmp_path, "work:\n  script: [sleep 60]\n")
    _wait_running(client, build_id, "work")
    assert agent.proc is not None
    pid = agent.proc.pid
    _wait_until(lambda: any("sleep 60" in c for c in _descendants(pid)), 10)
    agent.signal(signal.SIGTERM)
    time.sleep(0.3)
    assert agent.proc.poll() is None  # still waiting for the job
    agent.signal(signal.SIGTERM)
    assert agent.wait(timeout=10) == 0
    build = wait_for_build(client, build_id, timeout=5)
    assert build["status"] == "failed", build
    assert build["jobs"][0]["failure_reason"] == "runner_system_failure"


SANDBOX_PROBE = """
probe:
  script:
    - echo built > result.txt && cat result.txt
    - if touch /usr/ferrous-escape; then echo WROTE-SYSTEM; else echo system-read-only; fi
    - echo "interfaces:" $(tail -n +3 /proc/net/dev | cut -d':' -f1)
"""


def test_sandbox_executor_without_network(
    agents: Callable[..., AgentProcess], remote_server: ServerProcess, tmp_path: Path
) -> None:
    require_sandbox()
    agents("boxed", options=("--executor", "sandbox", "--no-network"))
    client, build_id = _trigger(remote_server, tmp_path, SANDBOX_PROBE)
    build = wait_for_build(client, build_id)
    assert build["status"] == "success", build
    text = client.get(f"/jobs/{build['jobs'][0]['id']}/log").text
    lines = text.splitlines()
    assert "(sandbox executor, no network)" in text
    assert "built" in lines
    assert "system-read-only" in lines
    assert "WROTE-SYSTEM" not in lines
    assert "interfaces: lo" in lines  # a network namespace of its own, with loopback only
    assert not Path("/usr/ferrous-escape").exists()


@pytest.mark.parametrize(
    ("options", "complaint"),
    [
        (["--no-network"], "--no-network needs the sandbox executor"),
        (["--executor", "docker"], "unknown executor 'docker'"),
    ],
)
def test_bad_executor_options_are_refused(
    options: list[str], complaint: str, tmp_path: Path
) -> None:
    argv = [sys.executable, "-m", "ferrous", "agent", "--server", "http://127.0.0.1:9"]
    argv += ["--work-dir", str(tmp_path), *options]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert complaint in " ".join(done.stderr.split())
