"""Secret variables on a real ``ferrous serve`` (SQLite and PostgreSQL) with embedded agents.

A project secret ``DEPLOY_KEY`` is set with the CLI (value on stdin); a job prints it whole,
split across two writes with a pause between them (so that the shipper sends the first part
in a chunk of its own, 200 ms later), and URL-encoded. The secret must appear nowhere: not
in the stored log (whole, and every byte range), not in the live stream read while the job
runs, not in any API answer about the build, the job or the secrets.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from tests.e2e.conftest import git_repo
from tests.e2e.server_process import ServerProcess, wait_for_build
from tests.e2e.test_broker_restart import LogFollower
from tests.e2e.test_webhooks import ferrous

pytestmark = pytest.mark.e2e

SECRET = "dk+live/7f3a9c2e5b1d@4f8a0c6e2b9d7f1a3c5e"
PAUSE = 2.0  # seconds between the two halves: ten times the shipper's flush interval
ENCODE = """\
import os
from urllib.parse import quote

print("url=" + quote(os.environ["DEPLOY_KEY"], safe=""))
"""
PIPELINE = f"""\
deploy:
  script:
    - echo "whole=$DEPLOY_KEY"
    - printf 'split=%s' "${{DEPLOY_KEY:0:10}}"; sleep {PAUSE}; printf '%s\\n' "${{DEPLOY_KEY:10}}"
    - python3 encode.py
    - echo "length=${{#DEPLOY_KEY}}"
"""


def fragments() -> list[str]:
    """The secret, its URL-encoded forms, and every 10-character piece of it."""
    pieces = [SECRET[i : i + 10] for i in range(len(SECRET) - 9)]
    return [SECRET, quote(SECRET, safe=""), quote(SECRET), *pieces]


def assert_nowhere(text: str, where: str) -> None:
    for fragment in fragments():
        assert fragment not in text, f"{fragment!r} in {where}: {text!r}"


def set_secret(server: ServerProcess) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "ferrous", "project", "secret", "set", "app", "DEPLOY_KEY",
         "--value-stdin", "--url", server.url],
        input=SECRET + "\n", env=server.cli_env(), capture_output=True, text=True, timeout=60,
        check=True,
    )  # fmt: skip
    return done.stdout + done.stderr


def test_a_job_printing_its_secret_leaves_no_trace_of_it(
    server: ServerProcess, tmp_path: Path
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / ".gitlab-ci.yml").write_text(PIPELINE)
    (repo / "encode.py").write_text(ENCODE)
    git_repo(repo)
    ferrous(server, "project", "add", "app", str(repo))
    answers = [set_secret(server)]
    api = server.client()

    build = api.post("/projects/app/builds", json={}).raise_for_status().json()
    [job] = build["jobs"]
    follower = LogFollower(server.url, job["id"], server.token)
    paused = watch_for_the_pause(api, job["id"])
    done = wait_for_build(api, build["id"])
    streamed, end = follower.result(60)
    stored = api.get(f"/jobs/{job['id']}/log").text

    assert done["status"] == "success", stored
    lines = stored.splitlines()
    assert "whole=[MASKED]" in lines
    assert "split=[MASKED]" in lines
    assert "url=[MASKED]" in lines
    assert f"length={len(SECRET)}" in lines  # the job had the whole value
    assert stored.startswith(paused)  # what was shipped before the pause stays
    assert paused.endswith("\nsplit=")  # the first half, held back, had not left the agent
    assert streamed == stored
    assert end is not None
    for where, text in (("stored log", stored), ("paused log", paused), ("stream", streamed)):
        assert_nowhere(text, where)

    size = len(stored.encode())
    for start in range(0, size, 7):
        part = api.get(f"/jobs/{job['id']}/log", headers={"Range": f"bytes={start}-{start + 24}"})
        assert part.status_code == 206, part.text
        answers.append(part.text)
    answers.append(api.get(f"/jobs/{job['id']}/log", params={"offset": 5}).text)
    for path in (
        f"/builds/{build['id']}",
        f"/jobs/{job['id']}",
        "/builds",
        "/projects/app",
        "/projects/app/secrets",
        "/agents",
    ):
        answers.append(api.get(path).raise_for_status().text)
    answers.append(ferrous(server, "project", "secret", "list", "app", "--json"))
    for number, text in enumerate(answers):
        assert_nowhere(text, f"answer {number}")


def watch_for_the_pause(api: httpx.Client, job_id: str) -> str:
    """The stored log as it was during the job's pause: after ``split=``, before the rest."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        text = api.get(f"/jobs/{job_id}/log").text
        if "\nsplit=" in text:  # printed (the echoed command line starts with "$ ")
            assert "\nsplit=[MASKED]" not in text, "the pause was missed: the machine is slow"
            return text
        time.sleep(0.05)
    raise AssertionError("the job never printed split=")
