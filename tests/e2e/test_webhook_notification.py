"""Webhook notifications end to end: a real ``ferrous serve`` (embedded agents, SQLite or
PostgreSQL) with a signed webhook rule and a Slack rule on a project whose build fails; a
local HTTP server receives exactly one signed POST for each, and the delivery log says
delivered."""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import git_repo
from tests.e2e.server_process import ServerProcess, wait_for_build
from tests.integration.notify.receiver import receiver

pytestmark = pytest.mark.e2e

FAILING = "test:\n  script: [echo failing, exit 3]\n"
SECRET = "e2e-webhook-secret-0123456789"


def deliveries(client: httpx.Client, rule_id: str) -> list[dict[str, Any]]:
    url = f"/projects/app/notifications/{rule_id}/deliveries"
    items: list[dict[str, Any]] = client.get(url).raise_for_status().json()["items"]
    return items


def settled(client: httpx.Client, rule_id: str) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 30
    while not (found := deliveries(client, rule_id)) or found[0]["status"] == "pending":
        assert time.monotonic() < deadline, found
        time.sleep(0.2)
    return found


def test_a_failed_build_is_posted_once_signed(tmp_path: Path, backend_env: dict[str, str]) -> None:
    with receiver() as hook:
        server = ServerProcess(tmp_path / "data", agents=1, env=backend_env).start()
        try:
            client = server.client()
            repo = tmp_path / "app"
            repo.mkdir()
            (repo / ".gitlab-ci.yml").write_text(FAILING)
            git_repo(repo)
            client.post("/projects", json={"name": "app", "repo_url": str(repo)}).raise_for_status()
            signed = (
                client.post(
                    "/projects/app/notifications",
                    json={
                        "name": "hook",
                        "channel": "webhook",
                        "target": f"{hook.url}/ci",
                        "on": ["failure"],
                        "secret": SECRET,
                    },
                )
                .raise_for_status()
                .json()
            )
            slack = (
                client.post(
                    "/projects/app/notifications",
                    json={"name": "chat", "channel": "slack", "target": f"{hook.url}/slack"},
                )
                .raise_for_status()
                .json()
            )
            client.post(
                "/projects/app/notifications",
                json={
                    "name": "good news",
                    "channel": "webhook",
                    "target": f"{hook.url}/ok",
                    "on": ["success"],
                },
            ).raise_for_status()

            build = client.post("/projects/app/builds", json={}).raise_for_status().json()
            assert wait_for_build(client, build["id"])["status"] == "failed"
            [delivery] = settled(client, signed["id"])
            [chat] = settled(client, slack["id"])
            time.sleep(2)  # a second send would come within the sender's next passes
        finally:
            server.stop()

    assert sorted(got.path for got in hook.received) == ["/ci", "/slack"]
    [got] = [g for g in hook.received if g.path == "/ci"]
    expected = "sha256=" + hmac.new(SECRET.encode(), got.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(got.headers["x-ferrous-signature-256"], expected)
    assert got.headers["x-ferrous-event"] == "build.failed"
    assert got.headers["x-ferrous-delivery"] == delivery["id"]
    body = json.loads(got.body)
    assert body["build"]["id"] == build["id"]
    assert body["build"]["url"].endswith(f"/builds/{build['id']}")
    assert [j["name"] for j in body["failed_jobs"]] == ["test"]
    assert (delivery["status"], delivery["attempts"], delivery["response_status"]) == (
        "delivered",
        1,
        200,
    )
    assert delivery["build_id"] == build["id"]
    [message] = [json.loads(g.body) for g in hook.received if g.path == "/slack"]
    assert message["text"].startswith(f"app / default #{build['number']} failed on main")
    assert chat["status"] == "delivered"


def ferrous(server: ServerProcess, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "ferrous", *args],
        env=server.cli_env(),
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_cli_manages_rules_and_shows_the_log(tmp_path: Path) -> None:
    with receiver(404) as hook:
        server = ServerProcess(tmp_path / "data", agents=0).start()
        try:
            server.client().post(
                "/projects", json={"name": "app", "repo_url": str(tmp_path)}
            ).raise_for_status()
            added = ferrous(server, "project", "notify", "add", "app", hook.url, "--json")
            rule = json.loads(added)
            assert (rule["channel"], rule["on"]) == ("webhook", ["failure", "recovery"])
            assert rule["id"] in ferrous(server, "project", "notify", "list", "app")
            assert "queued" in ferrous(server, "project", "notify", "test", "app", rule["id"])
            deadline = time.monotonic() + 30
            while True:
                log = json.loads(
                    ferrous(server, "project", "notify", "deliveries", "app", rule["id"], "--json")
                )
                if log[0]["status"] != "pending" or time.monotonic() > deadline:
                    break
                time.sleep(0.3)
            ferrous(server, "project", "notify", "remove", "app", rule["id"])
            assert "webhook" not in ferrous(server, "project", "notify", "list", "app")
        finally:
            server.stop()

    [got] = hook.received
    assert got.headers["x-ferrous-event"] == "ping"
    assert (log[0]["status"], log[0]["response_status"], log[0]["event"]) == ("failed", 404, "ping")
