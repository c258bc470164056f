"""kill -9 of the server while builds run, then a restart: every build ends, none hangs.

The server process (with its embedded agents) dies without any cleanup. After the restart,
the leases of the dead agents expire (a short lease timeout keeps the test quick): a job whose
``retry`` allows ``runner_system_failure`` runs again and can pass; one without is failed with
that reason; a job that was only queued when the server died simply runs.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import git_repo
from tests.e2e.server_process import ServerProcess, wait_for_build

pytestmark = pytest.mark.e2e

LEASE_TIMEOUT = "3"

PIPELINE = """\
stages: [first, second]
slow:
  stage: first
  script:
    - echo "attempt $FERROUS_JOB_ATTEMPT"
    - if [ "$FERROUS_JOB_ATTEMPT" = 1 ]; then sleep 40; fi
  RETRY
after:
  stage: second
  script: [echo after]
"""


QUICK = "quick:\n  script: [echo queued]\n"


def _project(client: httpx.Client, tmp_path: Path, name: str, pipeline: str) -> str:
    repo = tmp_path / name
    repo.mkdir()
    (repo / ".gitlab-ci.yml").write_text(pipeline)
    git_repo(repo)
    client.post("/projects", json={"name": name, "repo_url": str(repo)}).raise_for_status()
    build = client.post(f"/projects/{name}/builds", json={}).raise_for_status().json()
    return str(build["id"])


def _wait_running(client: httpx.Client, build_ids: list[str]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        builds = [client.get(f"/builds/{b}").json() for b in build_ids]
        slow = [next(j for j in b["jobs"] if j["name"] == "slow") for b in builds]
        if all(j["status"] == "running" and j["log_size"] > 0 for j in slow):
            return
        time.sleep(0.1)
    raise AssertionError(f"jobs never started: {builds}")


def _job(build: dict[str, Any], name: str) -> dict[str, Any]:
    return next(j for j in build["jobs"] if j["name"] == name)


def test_kill_9_of_the_server_mid_build(tmp_path: Path, backend_env: dict[str, str]) -> None:
    env = {**backend_env, "FERROUS_LEASE_TIMEOUT": LEASE_TIMEOUT}
    server = ServerProcess(tmp_path / "data", agents=2, env=env).start()
    try:
        client = server.client()
        retry = "retry: {max: 1, when: runner_system_failure}"
        retried = _project(client, tmp_path, "retried", PIPELINE.replace("RETRY", retry))
        failed = _project(client, tmp_path, "failed", PIPELINE.replace("RETRY", ""))
        _wait_running(client, [retried, failed])
        queued = _project(client, tmp_path, "queued", QUICK)  # both agents busy: it waits
        assert _job(client.get(f"/builds/{queued}").json(), "quick")["status"] == "pending"
        server.kill()

        server.start()
        client = server.client()
        done = {b: wait_for_build(client, b, timeout=120) for b in (retried, failed, queued)}
        slow_id = _job(done[retried], "slow")["id"]
        attempts = client.get(f"/jobs/{slow_id}").json()["attempts"]
    finally:
        server.stop()

    assert done[retried]["status"] == "success", done[retried]
    assert _job(done[retried], "slow")["attempt"] == 2
    assert [a["failure_reason"] for a in attempts] == [
        "runner_system_failure",
        None,
    ]
    assert done[failed]["status"] == "failed"
    slow = _job(done[failed], "slow")
    assert slow["failure_reason"] == "runner_system_failure"
    assert _job(done[failed], "after")["status"] == "skipped"
    assert done[queued]["status"] == "success"
    assert _job(done[queued], "quick")["attempt"] == 1
