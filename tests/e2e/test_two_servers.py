"""Two ``ferrous serve`` processes on one PostgreSQL database and one Redis broker.

A build triggered on a server without agents is run by the other server's agents (wake-ups
cross servers through the broker), and a live log followed on the first server shows the
chunks that agents send to the second. kill -9 of the server holding the singletons (outbox
relay, lease reaper, delayed-job starter) mid-build: the other server takes them over and
every build still finishes. Needs ``FERROUS_TEST_POSTGRES_URL`` and ``FERROUS_TEST_REDIS_URL``.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import git_repo
from tests.e2e.server_process import (
    ServerProcess,
    drop_postgres_database,
    postgres_database,
    wait_for_build,
)

pytestmark = pytest.mark.e2e

SINGLETONS = {
    "outbox_relay",
    "lease_reaper",
    "delayed_jobs",
    "schedule_firer",
    "status_sender",
    "log_archiver",
    "cleanup",
    "notification_sender",
}

PIPELINE = """\
stages: [first, second]
slow:
  stage: first
  script:
    - echo "attempt $FERROUS_JOB_ATTEMPT"
    - if [ "$FERROUS_JOB_ATTEMPT" = 1 ]; then sleep 8; fi
  retry: {max: 1, when: runner_system_failure}
after:
  stage: second
  script: [echo after]
"""


@pytest.fixture
def cluster_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """One fresh database, a broker prefix and an object store of their own, shared by
    both servers (servers of one installation must share the storage, as they share the
    database)."""
    admin = os.environ.get("FERROUS_TEST_POSTGRES_URL")
    redis = os.environ.get("FERROUS_TEST_REDIS_URL")
    if not admin or not redis:
        pytest.skip(
            "FERROUS_TEST_POSTGRES_URL and FERROUS_TEST_REDIS_URL must both be set "
            "(two servers need a shared database and broker)"
        )
    separator = "&" if "?" in redis else "?"
    broker = f"{redis}{separator}prefix=ferrous-test-{uuid.uuid4().hex[:8]}:"
    url = postgres_database(admin)
    try:
        yield {
            "FERROUS_DATABASE_URL": url,
            "FERROUS_BROKER_URL": broker,
            "FERROUS_STORAGE_URL": (tmp_path / "objects").as_uri(),
        }
    finally:
        drop_postgres_database(admin, url)


def _acquired(server: ServerProcess) -> set[str]:
    """The singletons this server's log says it acquired."""
    names = set()
    for line in server.log.read_text().splitlines():
        if '"singleton_acquired"' in line:
            names.add(json.loads(line)["singleton"])
    return names


def _wait_acquired(server: ServerProcess, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _acquired(server) == SINGLETONS:
            return
        time.sleep(0.1)
    raise AssertionError(f"{server.log} holds only {_acquired(server)}")


def _trigger(client: httpx.Client, tmp_path: Path, name: str, pipeline: str) -> str:
    repo = tmp_path / name
    repo.mkdir()
    (repo / ".gitlab-ci.yml").write_text(pipeline)
    git_repo(repo)
    client.post("/projects", json={"name": name, "repo_url": str(repo)}).raise_for_status()
    build = client.post(f"/projects/{name}/builds", json={}).raise_for_status().json()
    return str(build["id"])


def _job(build: dict[str, Any], name: str) -> dict[str, Any]:
    return next(j for j in build["jobs"] if j["name"] == name)


def _wait_running(client: httpx.Client, build_ids: list[str]) -> None:
    deadline = time.monotonic() + 60
    builds: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        builds = [client.get(f"/builds/{b}").json() for b in build_ids]
        slow = [_job(b, "slow") for b in builds]
        if all(j["status"] == "running" and j["log_size"] > 0 for j in slow):
            return
        time.sleep(0.1)
    raise AssertionError(f"jobs never started: {builds}")


def test_a_build_triggered_on_one_server_runs_on_the_others_agents(
    tmp_path: Path, cluster_env: dict[str, str]
) -> None:
    front = ServerProcess(tmp_path / "a", agents=0, env=cluster_env).start()
    workers = None
    try:
        workers = ServerProcess(tmp_path / "b", agents=2, env=cluster_env).start()
        client = front.client()
        build_id = _trigger(client, tmp_path, "cross", "hello:\n  script: [echo hello]\n")
        build = wait_for_build(client, build_id, timeout=60)
        log = client.get(f"/jobs/{_job(build, 'hello')['id']}/log").text
        # While both run, one server holds each singleton (before a stop hands them over).
        held = (_acquired(front), _acquired(workers))
    finally:
        front.stop()
        if workers is not None:
            workers.stop()
    assert build["status"] == "success", build
    assert "hello" in log
    assert held[0] | held[1] == SINGLETONS
    assert not held[0] & held[1]


def test_kill_9_of_the_singleton_holder_mid_build(
    tmp_path: Path, cluster_env: dict[str, str]
) -> None:
    env = {**cluster_env, "FERROUS_LEASE_TIMEOUT": "3"}
    holder = ServerProcess(tmp_path / "a", agents=1, env=env).start()
    other = None
    try:
        _wait_acquired(holder)
        other = ServerProcess(tmp_path / "b", agents=1, env=env).start()
        client = other.client()
        builds = [_trigger(client, tmp_path, f"p{i}", PIPELINE) for i in range(2)]
        _wait_running(client, builds)  # one agent each: a slow job on each server
        assert _acquired(other) == set()  # the first server holds every singleton

        holder.kill()
        done = [wait_for_build(client, b, timeout=90) for b in builds]
        _wait_acquired(other, timeout=10)  # taken over (mostly long before)
    finally:
        holder.stop()
        if other is not None:
            other.stop()

    for build in done:
        assert build["status"] == "success", build
        assert _job(build, "after")["status"] == "success"
    # The slow job whose agent died with the holder was reaped and run again.
    attempts = sorted(_job(build, "slow")["attempt"] for build in done)
    assert attempts in ([1, 2], [2, 2]), done


LIVE = """\
talk:
  script:
    - for i in 1 2 3 4 5; do echo "line-$i"; sleep 0.5; done
"""


def test_a_live_log_on_one_server_shows_what_agents_send_to_the_other(
    tmp_path: Path, cluster_env: dict[str, str]
) -> None:
    front = ServerProcess(tmp_path / "a", agents=0, env=cluster_env).start()
    workers = None
    try:
        workers = ServerProcess(tmp_path / "b", agents=1, env=cluster_env).start()
        client = front.client()
        build_id = _trigger(client, tmp_path, "live", LIVE)
        job_id = _job(client.get(f"/builds/{build_id}").json(), "talk")["id"]
        text, first_chunk_at, end = "", None, None
        with client.stream("GET", f"/jobs/{job_id}/log/stream", timeout=60.0) as stream:
            event = "message"
            for line in stream.iter_lines():
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:") and event == "end":
                    end = json.loads(line[5:])
                    break
                elif line.startswith("data:"):
                    text += json.loads(line[5:])
                    if first_chunk_at is None and "line-1" in text:
                        first_chunk_at = time.time()
        build = wait_for_build(client, build_id, timeout=30)
    finally:
        front.stop()
        if workers is not None:
            workers.stop()
    lines = [line for line in text.splitlines() if line.startswith("line-")]
    assert lines == [f"line-{i}" for i in range(1, 6)]
    assert end is not None
    assert end["status"] == "success"
    finished = _job(build, "talk")["finished_at"]
    # Live, not replayed at the end: the first line arrived while the job still ran.
    assert first_chunk_at is not None
    assert first_chunk_at < datetime.fromisoformat(finished).timestamp() - 1.0
