"""A real ``ferrous serve`` process: ``/readyz`` follows its database going away and coming
back while ``/healthz`` stays up; and its JSON logs carry the ids of what they are about.

The database that is stopped is a private PostgreSQL cluster (``tests.pg_cluster``), never
the shared one other tests use; the test skips where the PostgreSQL server binaries are not
installed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import pg_cluster
from tests.e2e.conftest import git_repo
from tests.e2e.server_process import ServerProcess, wait_for_build
from tests.pg_cluster import PostgresCluster

pytestmark = pytest.mark.e2e


@pytest.fixture
def postgres() -> Iterator[PostgresCluster]:
    reason = pg_cluster.unavailable()
    if reason is not None:
        pytest.skip(reason)
    cluster = PostgresCluster()
    try:
        yield cluster.start()
    finally:
        cluster.destroy()


def wait_for_readiness(url: str, status: int, timeout: float) -> dict[str, Any]:
    """The first ``/readyz`` answer with ``status`` (polled, as Kubernetes would)."""
    deadline = time.monotonic() + timeout
    answer: tuple[int, Any] = (0, None)
    while time.monotonic() < deadline:
        response = httpx.get(f"{url}/readyz", timeout=10.0)
        answer = (response.status_code, response.json())
        if response.status_code == status:
            body: dict[str, Any] = response.json()
            return body
        time.sleep(0.25)
    raise AssertionError(f"/readyz never answered {status} in {timeout} s: last {answer}")


def test_readyz_follows_the_database_while_healthz_stays_up(
    tmp_path: Path, postgres: PostgresCluster
) -> None:
    server = ServerProcess(
        tmp_path / "data", agents=0, env={"FERROUS_DATABASE_URL": postgres.url}
    ).start()
    try:
        ready = wait_for_readiness(server.url, 200, timeout=30)
        assert ready == {"status": "ready", "checks": {"database": "ok", "broker": "ok"}}

        postgres.stop()
        stopped = time.monotonic()
        down = wait_for_readiness(server.url, 503, timeout=10)
        assert time.monotonic() - stopped < 5.0
        assert down["status"] == "not-ready"
        assert down["checks"]["database"].startswith("unreachable: ")
        assert down["checks"]["broker"] == "ok"
        health = httpx.get(f"{server.url}/healthz", timeout=10.0)
        assert (health.status_code, health.json()) == (200, {"status": "ok"})

        postgres.start()
        assert wait_for_readiness(server.url, 200, timeout=30)["status"] == "ready"
        # and the server works again: its own pool recovered too
        with server.client() as client:
            assert client.get("/projects").status_code == 200
    finally:
        server.stop()
    assert '"component_not_ready"' in server.log.read_text()


PIPELINE = """\
hello:
  script: [echo hello]
"""


def test_json_logs_carry_the_request_build_job_and_agent_ids(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / ".gitlab-ci.yml").write_text(PIPELINE)
    git_repo(repo)
    server = ServerProcess(
        tmp_path / "data", agents=1, env={"FERROUS_LOG_FORMAT": "json", "FERROUS_LOG_LEVEL": "info"}
    ).start()
    try:
        with server.client() as client:
            client.post("/projects", json={"name": "p", "repo_url": str(repo)}).raise_for_status()
            build = client.post("/projects/p/builds", json={}).raise_for_status().json()
            done = wait_for_build(client, build["id"])
            agent_id = client.get("/agents").raise_for_status().json()["items"][0]["id"]
    finally:
        server.stop()
    assert done["status"] == "success"
    [job] = done["jobs"]
    lines = [
        line
        for line in server.log.read_text().splitlines()
        if not line.startswith("created the first admin")  # said to a person, on purpose
    ]
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all({"event", "level", "logger", "timestamp"} <= set(r) for r in records)
    ids = {"build_id": build["id"], "job_id": job["id"], "agent_id": agent_id}
    completed = [r for r in records if r["event"] == "job_completed"]
    by_logger = {r["logger"]: r for r in completed}
    # the agent's line (in the server's process: an embedded agent) and the server's line
    assert set(by_logger) == {"ferrous.agent.remote.worker", "ferrous.application.bootstrap"}
    for record in completed:
        assert {name: record.get(name) for name in ids} == ids, record
    # the server's was written while it handled the agent's `complete` request
    assert by_logger["ferrous.application.bootstrap"]["request_id"]
    assert "request_id" not in by_logger["ferrous.agent.remote.worker"]
