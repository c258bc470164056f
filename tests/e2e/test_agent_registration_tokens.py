"""An admin-created registration token lets a real ``ferrous agent`` join; revoked, it does not.

Real ``ferrous serve --agents 0`` (SQLite and PostgreSQL), the real ``ferrous agent-token``
commands and real agent processes: the agent registers with the token, keeps its own agent
token in a 0600 file and runs a build; after ``revoke`` the same token is refused (401) while
the agent already registered goes on working.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import git_repo
from tests.e2e.server_process import ServerProcess, wait_for_build
from tests.e2e.test_remote_agents import AgentProcess

pytestmark = pytest.mark.e2e


@pytest.fixture
def server(tmp_path: Path, backend_env: dict[str, str]) -> Iterator[ServerProcess]:
    env = {**backend_env, "FERROUS_AGENT_REGISTRATION_TOKEN": "bootstrap-not-given-to-agents"}
    process = ServerProcess(tmp_path / "data", agents=0, env=env).start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def agents() -> Iterator[list[AgentProcess]]:
    started: list[AgentProcess] = []
    yield started
    for agent in started:
        agent.stop()


def ferrous(server: ServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "ferrous", *args],
        env=server.cli_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def token_list(server: ServerProcess) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = json.loads(
        ferrous(server, "agent-token", "list", "--json").stdout
    )
    return items


def build_on(client: httpx.Client, project: str) -> dict[str, Any]:
    build = client.post(f"/projects/{project}/builds", json={}).raise_for_status().json()
    return wait_for_build(client, build["id"])


def test_an_agent_joins_with_an_admin_token_until_it_is_revoked(
    server: ServerProcess, agents: list[AgentProcess], tmp_path: Path
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / ".gitlab-ci.yml").write_text("hello:\n  script: [echo hello from the agent]\n")
    git_repo(repo)
    client = server.client()
    client.post("/projects", json={"name": "app", "repo_url": str(repo)}).raise_for_status()

    created = ferrous(server, "agent-token", "create", "--description", "e2e", "--max-uses", "3")
    token = created.stdout.strip()
    assert token.startswith("frt_")

    first = AgentProcess(tmp_path / "first", [server.url])
    agents.append(first)
    first.start(token=token)
    identity_file = first.work_dir / "agent.json"
    assert identity_file.stat().st_mode & 0o777 == 0o600
    assert first.identity["token"].startswith("fra_")
    assert first.identity["token"] != token  # its own agent token, not the registration one

    build = build_on(client, "app")
    assert build["status"] == "success", build
    assert build["jobs"][0]["agent_id"] == first.agent_id
    [item] = token_list(server)
    assert (item["uses"], item["status"], item["description"]) == (1, "active", "e2e")

    revoked = ferrous(server, "agent-token", "revoke", item["id"])
    assert item["id"] in revoked.stdout

    second = AgentProcess(tmp_path / "second", [server.url])
    refused = subprocess.run(
        [*second.argv, "--token", token],
        env={k: v for k, v in os.environ.items() if k != "FERROUS_AGENT_REGISTRATION_TOKEN"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "refused the registration token" in refused.stderr
    assert not (second.work_dir / "agent.json").exists()

    direct = client.post("/agent/register", json={"token": token, "name": "by-hand"})
    assert direct.status_code == 401, direct.text
    assert "revoked" in direct.json()["detail"]

    [item] = token_list(server)
    assert (item["uses"], item["status"]) == (1, "revoked")
    assert [a["id"] for a in client.get("/agents").json()["items"]] == [first.agent_id]
    again = build_on(client, "app")  # the agent that joined before keeps working
    assert again["status"] == "success", again
    assert again["jobs"][0]["agent_id"] == first.agent_id
