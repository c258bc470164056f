"""The broker (Redis or RabbitMQ) dies mid-build and comes back: nothing is lost.

Two ``ferrous serve --agents 0`` share one fresh PostgreSQL database and a private broker
process (``broker_processes``; the shared brokers are never touched). Two ``ferrous agent``
processes work for the second server; builds are triggered on the first, so their agents are
woken only through the broker, and a live log is followed on the first while the agents send
it to the second.

While the first job of a three-stage build prints its lines, the broker gets a SIGKILL. It
stays down until the job has finished and the next stage runs (the events of those commits
wait in the outbox), then starts again on the same port. The build must succeed with every
job's log complete (each line once, in order) in the database and in the live streams, the
outbox must drain (the held events published after the restart), and a second build must be
woken promptly (subscriptions and publishing both came back).

A job queued (on the first server) while the broker is down must also start promptly once it
is back: the relay publishes its ``JobQueued`` as soon as it can, possibly before the second
server has subscribed again, so that server must look at the database when its subscription
resumes (``on_resume``) instead of waiting for its agents' claims to time out.

Needs ``FERROUS_TEST_POSTGRES_URL`` and ``FERROUS_TEST_REDIS_URL`` /
``FERROUS_TEST_RABBITMQ_URL`` (the sign that CI provides these services; the brokers
themselves are started here from ``redis-server`` / ``rabbitmq-server``).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.auth import bearer
from tests.e2e.broker_processes import BROKERS, BrokerProcess
from tests.e2e.conftest import git_repo
from tests.e2e.server_process import (
    ServerProcess,
    drop_postgres_database,
    postgres_database,
    wait_for_build,
)

pytestmark = pytest.mark.e2e

URL_VARIABLES = {"redis": "FERROUS_TEST_REDIS_URL", "rabbitmq": "FERROUS_TEST_RABBITMQ_URL"}
TOKEN = "e2e-broker-restart-token"
#: Lines each job prints, one every 0.1 s.
LINES = {"compile": 25, "unit": 40, "lint": 20, "deploy": 10}
#: The agents' claim long-poll. A job queued after the restart must start well within it:
#: only a broker wake-up (or a look at the database when a subscription resumes) gets it
#: there that fast; a lost wake-up waits for the long-poll to end.
CLAIM_TIMEOUT = 30
WAKE_BOUND = 8.0
#: From the broker answering again to a job queued during the outage starting: the
#: subscriptions reconnect with a backoff of at most 5 s.
RESUME_BOUND = 10.0


def _job_yaml(name: str, stage: str) -> str:
    script = f'for i in $(seq 1 {LINES[name]}); do echo "{name} line $i"; sleep 0.1; done'
    return f"{name}:\n  stage: {stage}\n  script:\n    - '{script}'\n"


PIPELINE = "stages: [build, test, deploy]\n" + "".join(
    _job_yaml(name, stage)
    for name, stage in [
        ("compile", "build"),
        ("unit", "test"),
        ("lint", "test"),
        ("deploy", "deploy"),
    ]
)


class AgentProcess:
    """``ferrous agent`` for one server; stopped gracefully (SIGTERM) after the test."""

    def __init__(self, work_dir: Path, server: str) -> None:
        self.argv = [sys.executable, "-m", "ferrous", "agent", "--server", server]
        self.argv += ["--work-dir", str(work_dir), "--name", work_dir.name, "--token", TOKEN]
        self.argv += ["--kill-grace", "1"]
        self.log = work_dir.parent / f"{work_dir.name}.log"
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> AgentProcess:
        env = {k: v for k, v in os.environ.items() if k != "FERROUS_AGENT_REGISTRATION_TOKEN"}
        with self.log.open("a") as log:
            self.proc = subprocess.Popen(
                self.argv, env=env, stdout=subprocess.PIPE, stderr=log, text=True
            )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert "running" in line, f"agent did not start: {line!r}\n{self.log.read_text()[-3000:]}"
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.send_signal(signal.SIGTERM)  # the second one cancels running jobs
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


#: How the broker goes away: SIGKILL (a crash) for both; for RabbitMQ also a clean node stop,
#: where the node closes its clients' connections (``connection.close``) before it exits.
OUTAGES = [("redis", "kill"), ("rabbitmq", "kill"), ("rabbitmq", "stop")]


@dataclass
class Cluster:
    broker: BrokerProcess
    outage: str
    database_url: str
    front: ServerProcess  # where builds are triggered and logs followed
    workers: ServerProcess  # where the agents claim and send logs
    agents: list[AgentProcess] = field(default_factory=list)

    def diagnostics(self) -> str:
        parts = []
        for log in (self.front.log, self.workers.log, self.broker.log):
            parts.append(f"--- {log}\n{log.read_text(errors='replace')[-4000:]}")
        return "\n".join(parts)


@pytest.fixture(params=OUTAGES, ids=["-".join(outage) for outage in OUTAGES])
def cluster(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Cluster]:
    kind, outage = request.param
    admin = os.environ.get("FERROUS_TEST_POSTGRES_URL")
    if not admin or not os.environ.get(URL_VARIABLES[kind]):
        pytest.skip(
            f"FERROUS_TEST_POSTGRES_URL and {URL_VARIABLES[kind]} must both be set "
            f"(servers on a shared database, and {kind} installed to start a private one)"
        )
    missing = BROKERS[kind].available()
    if missing:
        pytest.skip(f"cannot start a private {kind}: {missing}")
    broker = BROKERS[kind](tmp_path / kind).start()
    database_url = postgres_database(admin)
    env = {
        "FERROUS_DATABASE_URL": database_url,
        "FERROUS_BROKER_URL": broker.url,
        "FERROUS_AGENT_REGISTRATION_TOKEN": TOKEN,
        "FERROUS_CLAIM_TIMEOUT": str(CLAIM_TIMEOUT),
        "FERROUS_STORAGE_URL": (tmp_path / "objects").as_uri(),  # shared, as the database
    }
    front = ServerProcess(tmp_path / "front", agents=0, env=env)
    workers = ServerProcess(tmp_path / "workers", agents=0, env=env)
    cluster = Cluster(broker, outage, database_url, front, workers)
    try:
        front.start()
        workers.start()
        for name in ("agent-1", "agent-2"):
            agent = AgentProcess(tmp_path / name, workers.url)
            cluster.agents.append(agent)
            agent.start()
        yield cluster
    finally:
        for agent in cluster.agents:
            agent.stop()
        front.stop()
        workers.stop()
        broker.kill()
        drop_postgres_database(admin, database_url)


class LogFollower:
    """Follows a job's live log (SSE) in a thread, until its ``end`` event."""

    def __init__(self, server_url: str, job_id: str, token: str) -> None:
        self.url = f"{server_url}/api/v1/jobs/{job_id}/log/stream"
        self.headers = bearer(token)
        self.text = ""
        self.end: dict[str, Any] | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._follow, daemon=True)
        self.thread.start()

    def _follow(self) -> None:
        try:
            with httpx.stream("GET", self.url, headers=self.headers, timeout=60.0) as stream:
                event = "message"
                for line in stream.iter_lines():
                    if line.startswith("event:"):
                        event = line[6:].strip()
                    elif line.startswith("data:") and event == "end":
                        self.end = json.loads(line[5:])
                        return
                    elif line.startswith("data:"):
                        self.text += json.loads(line[5:])
                    elif not line:
                        event = "message"
        except BaseException as exc:
            self.error = exc

    def result(self, timeout: float) -> tuple[str, dict[str, Any] | None]:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), f"{self.url} did not end; got {self.text!r}"
        assert self.error is None, f"{self.url}: {self.error!r}"
        return self.text, self.end


def _printed(name: str, log: str) -> list[str]:
    """The lines the job's script printed (not the echoed command), in order."""
    pattern = re.compile(rf"^{re.escape(name)} line \d+$")
    return [line for line in log.splitlines() if pattern.match(line)]


def _expected(name: str) -> list[str]:
    return [f"{name} line {i}" for i in range(1, LINES[name] + 1)]


def _trigger(client: httpx.Client, tmp_path: Path, name: str, pipeline: str) -> str:
    repo = tmp_path / name
    repo.mkdir()
    (repo / ".gitlab-ci.yml").write_text(pipeline)
    git_repo(repo)
    client.post("/projects", json={"name": name, "repo_url": str(repo)}).raise_for_status()
    build = client.post(f"/projects/{name}/builds", json={}).raise_for_status().json()
    return str(build["id"])


def _jobs(client: httpx.Client, build_id: str) -> dict[str, dict[str, Any]]:
    build = client.get(f"/builds/{build_id}").raise_for_status().json()
    return {job["name"]: job for job in build["jobs"]}


def _wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _outbox(database_url: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    async def query() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()

    return asyncio.run(query())


def _unpublished(database_url: str) -> list[int]:
    rows = _outbox(database_url, "SELECT id FROM outbox WHERE published_at IS NULL ORDER BY id")
    return [row["id"] for row in rows]


def test_the_broker_restarts_mid_build(cluster: Cluster, tmp_path: Path) -> None:
    client = cluster.front.client()
    try:
        _run_scenario(cluster, client, tmp_path)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{cluster.diagnostics()}") from exc


def _run_scenario(cluster: Cluster, client: httpx.Client, tmp_path: Path) -> None:
    broker, db = cluster.broker, cluster.database_url
    build_id = _trigger(client, tmp_path, "app", PIPELINE)
    job_ids = {name: job["id"] for name, job in _jobs(client, build_id).items()}
    front = cluster.front
    followers = {name: LogFollower(front.url, job_ids[name], front.token) for name in job_ids}

    def compile_printing() -> bool:
        log = client.get(f"/jobs/{job_ids['compile']}/log").text
        return len(_printed("compile", log)) >= 3

    _wait_until(compile_printing, 30, "compile to print")
    killed_at = datetime.now(UTC)
    if cluster.outage == "kill":
        broker.kill()
    else:
        broker.stop()

    # Without the broker the agents still run the build (through the server they talk to);
    # what the next stage's commits record waits in the outbox.
    def test_stage_running() -> bool:
        jobs = _jobs(client, build_id)
        return jobs["compile"]["status"] == "success" and jobs["unit"]["status"] == "running"

    _wait_until(test_stage_running, 30, "the test stage to start while the broker is down")
    held = _unpublished(db)
    assert held, "no event waited in the outbox while the broker was down"

    restarted_at = datetime.now(UTC)
    broker.start()

    build = wait_for_build(client, build_id, timeout=60)
    assert build["status"] == "success", build
    for job in build["jobs"]:
        assert (job["status"], job["attempt"]) == ("success", 1), job
        log = client.get(f"/jobs/{job['id']}/log").text
        assert _printed(job["name"], log) == _expected(job["name"]), (job["name"], log)

    # Every event is published: the outbox drains, the held ones after the restart.
    _wait_until(lambda: not _unpublished(db), 20, "the outbox to drain")
    rows = _outbox(db, "SELECT id, published_at FROM outbox WHERE id = ANY($1)", held)
    assert len(rows) == len(held)
    for row in rows:
        assert row["published_at"] >= restarted_at > killed_at, dict(row)

    # The live logs followed on the other server are complete too.
    for name, follower in followers.items():
        text, end = follower.result(timeout=30)
        assert _printed(name, text) == _expected(name), (name, text)
        assert end == {"status": "success", "size": len(text.encode())}, (name, end)

    # A build after the restart: its job is woken through the broker, not by a claim timeout.
    again = _trigger(client, tmp_path, "again", "again:\n  script: [echo again]\n")
    done = wait_for_build(client, again, timeout=40)
    assert done["status"] == "success", done
    job = done["jobs"][0]
    waited = datetime.fromisoformat(job["started_at"]) - datetime.fromisoformat(job["queued_at"])
    assert waited.total_seconds() < WAKE_BOUND, job
    _wait_until(lambda: not _unpublished(db), 20, "the outbox to drain after the second build")


@pytest.mark.parametrize(
    "cluster", [("redis", "kill"), ("rabbitmq", "kill")], indirect=True, ids=["redis", "rabbitmq"]
)
def test_a_job_queued_while_the_broker_is_down_starts_once_it_is_back(
    cluster: Cluster, tmp_path: Path
) -> None:
    """The agents' claims started when they did (just now): without a wake-up they wait
    ``CLAIM_TIMEOUT`` seconds, far longer than the outage and ``RESUME_BOUND``."""
    client = cluster.front.client()
    cluster.broker.kill()
    build_id = _trigger(client, tmp_path, "queued", "queued:\n  script: [echo queued]\n")
    # The relay tries and keeps the events; the subscriptions retry, backing off (an outage
    # of a few seconds makes their retries sparse enough to come after the relay's).
    time.sleep(3.0)
    assert _jobs(client, build_id)["queued"]["status"] == "pending"
    cluster.broker.start()
    back = time.monotonic()

    def started() -> bool:
        return _jobs(client, build_id)["queued"]["status"] != "pending"

    try:
        _wait_until(started, CLAIM_TIMEOUT + 10, "the queued job to start")
        took = time.monotonic() - back
        assert took < RESUME_BOUND, f"the job started {took:.1f} s after the broker came back"
        assert wait_for_build(client, build_id, timeout=20)["status"] == "success"
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{cluster.diagnostics()}") from exc
