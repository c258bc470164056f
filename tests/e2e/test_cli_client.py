"""The client commands against a real server, as a person or a script uses them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import git_repo
from tests.e2e.server_process import ServerProcess

pytestmark = pytest.mark.e2e

PIPELINE = """\
stages: [build, deploy]
build:
  stage: build
  script:
    - echo "building $GREETING"
deploy:
  stage: deploy
  when: manual
  script: [echo deployed]
"""


def ferrous(server: ServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ferrous", *args],
        env=server.cli_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def sqlite_server(tmp_path: Path) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path / "data", agents=2).start()
    yield server
    server.stop()


def test_project_trigger_wait_builds_logs_play(
    sqlite_server: ServerProcess, tmp_path: Path
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / ".gitlab-ci.yml").write_text(PIPELINE)
    git_repo(repo)

    added = ferrous(sqlite_server, "project", "add", "app", str(repo))
    assert added.returncode == 0, added.stderr
    assert "project app added" in added.stdout

    waited = ferrous(sqlite_server, "trigger", "app", "--var", "GREETING=world", "--wait")
    assert waited.returncode == 0, waited.stdout + waited.stderr
    assert "[build] building world" in waited.stdout
    assert "build #1: success" in waited.stdout

    listed = ferrous(sqlite_server, "builds", "--json")
    page = json.loads(listed.stdout)
    assert [b["number"] for b in page["items"]] == [1]
    build_id = page["items"][0]["id"]

    table = ferrous(sqlite_server, "builds")
    assert table.stdout.splitlines()[0].split()[:3] == ["NUMBER", "PROJECT_NAME", "REF"]

    detail = sqlite_server.client().get(f"/builds/{build_id}").json()
    jobs = {job["name"]: job for job in detail["jobs"]}
    assert jobs["deploy"]["status"] == "manual"
    log = ferrous(sqlite_server, "logs", jobs["build"]["id"])
    assert "building world" in log.stdout

    played = ferrous(sqlite_server, "play", jobs["deploy"]["id"], "--json")
    assert json.loads(played.stdout)["status"] in ("pending", "running", "success")
    followed = ferrous(sqlite_server, "logs", "-f", jobs["deploy"]["id"])
    assert "deployed" in followed.stdout

    finished = ferrous(sqlite_server, "cancel", build_id)
    assert finished.returncode == 1
    assert "HTTP 409" in finished.stderr


def test_failed_build_exits_one_and_unknown_project_is_clear(
    sqlite_server: ServerProcess, tmp_path: Path
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / ".gitlab-ci.yml").write_text("broken:\n  script: [exit 3]\n")
    git_repo(repo)
    assert ferrous(sqlite_server, "project", "add", "bad", str(repo)).returncode == 0
    waited = ferrous(sqlite_server, "trigger", "bad", "--wait")
    assert waited.returncode == 1
    assert "build #1: failed" in waited.stdout
    missing = ferrous(sqlite_server, "trigger", "nope")
    assert missing.returncode == 1
    assert "HTTP 404" in missing.stderr


def test_unreachable_server_says_where_it_looked(tmp_path: Path) -> None:
    env = {**os.environ, "FERROUS_URL": "http://127.0.0.1:9"}
    done = subprocess.run(
        [sys.executable, "-m", "ferrous", "builds"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert "cannot reach the server at http://127.0.0.1:9" in done.stderr
