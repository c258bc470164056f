"""The ``ferrous run`` scenarios again, through a real server with its agents over HTTP.

Same data (``run_scenarios/``), a different engine path: the server compiles the pipeline at
the commit, its embedded agents claim and run the jobs over the agent protocol, and the
result is read back through the REST API. Both must agree with the same expected statuses,
on SQLite and on PostgreSQL. Scenarios that need ``ferrous run`` flags (``--job``,
``--manual``) or several runs, or that check the local run folder, are run by
``test_run_scenarios.py`` only.
"""

from __future__ import annotations

import json
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import git_repo
from tests.e2e.server_process import ServerProcess, wait_for_build

SCENARIOS = Path(__file__).parent / "run_scenarios"
LOCAL_ONLY_KEYS = {"runs", "interrupt_when", "no_runs", "git", "stderr_contains"}


def _server_scenarios() -> list[str]:
    names = []
    for folder in sorted(SCENARIOS.iterdir()):
        expected_file = folder / "expected.json"
        if not expected_file.is_file():
            continue
        expected = json.loads(expected_file.read_text())
        args = expected.get("args", [])
        if LOCAL_ONLY_KEYS & expected.keys() or any(a.startswith("--") for a in args):
            continue
        names.append(folder.name)
    return names


NAMES = _server_scenarios()
pytestmark = pytest.mark.e2e


def _moment(job: dict[str, Any], field: str) -> datetime:
    assert job[field] is not None, f"{job['name']} has no {field}"
    return datetime.fromisoformat(job[field])


def _check(expected: dict[str, Any], build: dict[str, Any], client: httpx.Client) -> None:
    jobs = {job["name"]: job for job in build["jobs"]}
    context = json.dumps(build, indent=1)
    assert build["status"] == expected["status"], context
    if "jobs" in expected:
        assert {n: j["status"] for n, j in jobs.items()} == expected["jobs"], context
    for key, field in (
        ("attempts", "attempt"),
        ("exit_codes", "exit_code"),
        ("failure_reason", "failure_reason"),
        ("allow_failure_hit", "failure_allowed"),
    ):
        for name, value in expected.get(key, {}).items():
            assert jobs[name][field] == value, f"{name}.{field}\n{context}"
    for name, texts in expected.get("log_contains", {}).items():
        log = client.get(f"/jobs/{jobs[name]['id']}/log").text
        for text in texts:
            assert text in log, f"{text!r} not in the log of {name}:\n{log}"
    for name, texts in expected.get("log_lacks", {}).items():
        log = client.get(f"/jobs/{jobs[name]['id']}/log").text
        for text in texts:
            assert text not in log, f"{text!r} in the log of {name}:\n{log}"
    for first, second in expected.get("started_before_finished", []):
        assert _moment(jobs[first], "started_at") < _moment(jobs[second], "finished_at")
    for first, second in expected.get("finished_before_started", []):
        assert _moment(jobs[first], "finished_at") <= _moment(jobs[second], "started_at")
    for first, second, seconds in expected.get("gap_at_least", []):
        gap = _moment(jobs[second], "started_at") - _moment(jobs[first], "finished_at")
        assert gap.total_seconds() >= seconds


def trigger(server: ServerProcess, repo: Path, name: str) -> tuple[httpx.Client, dict[str, Any]]:
    client = server.client()
    project = client.post("/projects", json={"name": name, "repo_url": str(repo)})
    project.raise_for_status()
    build = client.post(f"/projects/{name}/builds", json={}).raise_for_status().json()
    return client, build


@pytest.mark.parametrize("name", NAMES)
def test_scenario_on_a_server(name: str, server: ServerProcess, tmp_path: Path) -> None:
    expected = json.loads((SCENARIOS / name / "expected.json").read_text())
    repo = tmp_path / "repo"
    shutil.copytree(SCENARIOS / name, repo, ignore=shutil.ignore_patterns("expected.json"))
    git_repo(repo)
    client, build = trigger(server, repo, name.replace("_", "-"))
    _check(expected, wait_for_build(client, build["id"]), client)


def test_invalid_pipeline_makes_a_failed_build_with_every_problem(
    server: ServerProcess, tmp_path: Path
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / ".gitlab-ci.yml").write_text("build:\n  scrip: make\n  needs: [nowhere]\n")
    git_repo(repo)
    client, build = trigger(server, repo, "broken")
    assert build["status"] == "failed"
    assert build["failure_reason"] == "config_error"
    assert build["jobs"] == []
    where = {(p["line"], p["column"]) for p in build["problems"] if p["severity"] == "error"}
    assert {(1, 1), (2, 3), (3, 11)} <= where
    assert client.get("/builds/nope").status_code == 404
    cancel = client.post(f"/builds/{build['id']}/cancel")
    assert cancel.status_code == 409
    assert cancel.headers["content-type"].startswith("application/problem+json")
