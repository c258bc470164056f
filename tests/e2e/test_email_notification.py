"""Email notifications end to end: a real ``ferrous serve`` (embedded agents, SQLite or
PostgreSQL) with an email rule on a project whose build fails; a real SMTP server (aiosmtpd)
on 127.0.0.1 receives exactly one message, and the delivery log says delivered."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import git_repo
from tests.e2e.server_process import ServerProcess, wait_for_build
from tests.smtp import SmtpServer, smtp_env

pytestmark = pytest.mark.e2e

FAILING = "test:\n  script: [echo failing, exit 3]\n"


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


def deliveries(client: httpx.Client, project: str, rule_id: str) -> list[dict[str, Any]]:
    url = f"/projects/{project}/notifications/{rule_id}/deliveries"
    items: list[dict[str, Any]] = client.get(url).raise_for_status().json()["items"]
    return items


def test_a_failed_build_sends_one_email(
    tmp_path: Path, backend_env: dict[str, str], smtp: SmtpServer
) -> None:
    server = ServerProcess(tmp_path / "data", agents=1, env=backend_env | smtp_env(smtp)).start()
    try:
        client = server.client()
        repo = tmp_path / "app"
        repo.mkdir()
        (repo / ".gitlab-ci.yml").write_text(FAILING)
        git_repo(repo)
        client.post("/projects", json={"name": "app", "repo_url": str(repo)}).raise_for_status()
        rule = (
            client.post(
                "/projects/app/notifications",
                json={
                    "name": "mail the team",
                    "channel": "email",
                    "target": "dev@example.com, lead@example.com",
                    "on": ["failure"],
                    "secret": None,  # until NotificationRuleCreate.secret has a default
                },
            )
            .raise_for_status()
            .json()
        )

        build = client.post("/projects/app/builds", json={}).raise_for_status().json()
        assert wait_for_build(client, build["id"])["status"] == "failed"
        (received,) = smtp.wait_for(1)
        deadline = time.monotonic() + 30
        while (found := deliveries(client, "app", rule["id"]))[0]["status"] == "pending":
            assert time.monotonic() < deadline, found
            time.sleep(0.2)
        time.sleep(2)  # a second send would come within the sender's next passes
    finally:
        server.stop()

    assert len(smtp.messages) == 1
    [delivery] = found
    assert delivery["status"] == "delivered"
    assert delivery["response_status"] == 250
    assert delivery["build_id"] == build["id"]
    message = received.message
    assert sorted(received.rcpt_tos) == ["dev@example.com", "lead@example.com"]
    assert message["Subject"] == f"[app] Build #{build['number']} failed on main"
    assert message["Message-ID"] == f"<{delivery['id']}@ferrous>"
    assert message["X-Ferrous-Delivery"] == delivery["id"]
    text = message.get_body(preferencelist=("plain",))
    assert text is not None
    body = text.get_content()
    assert f"/builds/{build['id']}" in body
    assert "test (stage test)" in body
