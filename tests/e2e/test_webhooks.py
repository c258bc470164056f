"""Forge webhooks end to end: a signed GitHub push -> a build -> agents fetch the commit ->
the job runs -> the commit status reaches the forge.

A real ``ferrous serve`` (SQLite and PostgreSQL) with its embedded agents builds a project
served by a token-protected git HTTP server, and posts its statuses to a fake GitHub on
127.0.0.1. The push payloads carry no file lists, so the files each push changed come from
the server's mirror (``git diff before..after``) and decide ``rules:changes``; a redelivery
creates nothing; a bad signature is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.server_process import ServerProcess, wait_for_build
from tests.fake_forge import FakeForge
from tests.git_servers import GitHttpServer, ServedRepo

pytestmark = pytest.mark.e2e

TOKEN = "ghp_E2eWebhookTokenNeverShown"
STATUS_TOKEN = "ghp_E2eStatusTokenNeverShown"
SECRET = "webhook-secret-for-the-e2e-test"
PIPELINE = """
always:
  script: [test "$(git rev-parse HEAD)" = "$CI_COMMIT_SHA", echo "before $CI_COMMIT_BEFORE_SHA"]
docs:
  rules:
    - changes: [docs/**]
  script: [cat docs/guide.md]
"""


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[GitHttpServer, ServedRepo]]:
    base = tmp_path / "served"
    base.mkdir()
    repo = ServedRepo(base, "app")
    http = GitHttpServer(base, token=TOKEN).start()
    yield http, repo
    http.stop()


@pytest.fixture
def forge() -> Iterator[FakeForge]:
    with FakeForge(token=STATUS_TOKEN) as fake:
        yield fake


def push_delivery(before: str, after: str, delivery: str, secret: str = SECRET) -> dict[str, Any]:
    payload = {
        "ref": "refs/heads/main",
        "before": before,
        "after": after,
        "created": False,
        "deleted": False,
        "forced": False,
        "commits": [],  # no file lists: the server asks git what changed
        "head_commit": None,
        "repository": {
            "name": "app",
            "full_name": "octo/app",
            "owner": {"login": "octo", "name": "octo"},
            "clone_url": "https://github.com/octo/app.git",
            "ssh_url": "git@github.com:octo/app.git",
            "html_url": "https://github.com/octo/app",
            "default_branch": "main",
        },
        "sender": {"login": "mona"},
    }
    body = json.dumps(payload).encode()
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": delivery,
        "X-Hub-Signature-256": f"sha256={signature}",
    }
    return {"content": body, "headers": headers}


def jobs(build: dict[str, Any]) -> dict[str, str]:
    return {job["name"]: job["status"] for job in build["jobs"]}


def ferrous(server: ServerProcess, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "ferrous", *args, "--url", server.url],
        env=server.cli_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout


def test_pushes_build_what_they_changed(
    server: ServerProcess,
    served: tuple[GitHttpServer, ServedRepo],
    tmp_path: Path,
    forge: FakeForge,
) -> None:
    http, repo = served
    first = repo.commit({".gitlab-ci.yml": PIPELINE, "README.md": "hello\n"}, "pipeline")
    docs = repo.commit({"docs/guide.md": "a guide\n"}, "docs")
    code = repo.commit({"main.c": "int main;\n"}, "code")
    client = server.client()
    client.post(
        "/projects",
        json={
            "name": "app",
            "repo_url": http.url("app"),
            "credentials": {"kind": "https_token", "token": TOKEN},
            "forge": "github",
            "forge_api_url": forge.url,
            "forge_repo": "octo/app",
            "forge_token": STATUS_TOKEN,
        },
    ).raise_for_status()
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET + "\n")
    urls = ferrous(server, "project", "webhook", "app", "--secret-file", str(secret_file))
    assert f"github     {server.url}/api/v1/hooks/github/app" in urls
    assert SECRET not in urls
    hook = "/hooks/github/app"

    answer = client.post(hook, **push_delivery(first, docs, "delivery-1"))
    assert answer.status_code == 200, answer.text
    (docs_build_id,) = answer.json()["build_ids"]
    answer = client.post(hook, **push_delivery(docs, code, "delivery-2"))
    (code_build_id,) = answer.json()["build_ids"]
    docs_build = wait_for_build(client, docs_build_id)
    code_build = wait_for_build(client, code_build_id)

    assert docs_build["status"] == "success", docs_build
    assert (docs_build["sha"], docs_build["source"]) == (docs, "push")
    assert jobs(docs_build) == {"always": "success", "docs": "success"}
    assert code_build["status"] == "success", code_build
    assert jobs(code_build) == {"always": "success"}  # docs/** did not change
    for sha in (docs, code):  # the forge hears how each commit's build ended
        forge.wait_for(
            lambda taken, sha=sha: any(
                r.path == f"/repos/octo/app/statuses/{sha}" and r.json["state"] == "success"
                for r in taken
            ),
            timeout=30,
        )
    assert {r.headers["authorization"] for r in forge.taken()} == {f"Bearer {STATUS_TOKEN}"}
    log = client.get(f"/jobs/{code_build['jobs'][0]['id']}/log").text
    assert f"before {docs}" in log
    assert TOKEN not in log

    again = client.post(hook, **push_delivery(docs, code, "delivery-2"))
    assert again.json()["redelivery"] is True
    assert again.json()["build_ids"] == [code_build_id]
    forged = client.post(hook, **push_delivery(docs, code, "delivery-3", secret="wrong" * 5))
    assert forged.status_code == 401
    builds = client.get("/builds").json()["items"]
    assert sorted(b["id"] for b in builds) == sorted([docs_build_id, code_build_id])
    deliveries = json.loads(ferrous(server, "project", "deliveries", "app", "--json"))
    assert [d["delivery_id"] for d in deliveries] == ["delivery-2", "delivery-1"]
    assert [d["outcome"] for d in deliveries] == ["built", "built"]
