"""Commit statuses end to end: a real ``ferrous serve`` with embedded agents builds local
repositories whose projects report to a fake forge on 127.0.0.1 (as GitHub and as GitLab);
the forge receives each build's states for its commit, with the project's token. Then a
forge that is down while a build ends, and a server killed with ``kill -9`` before it could
report: the next server reports it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import git_repo
from tests.e2e.server_process import ServerProcess, wait_for_build
from tests.fake_forge import FakeForge, Recorded

pytestmark = pytest.mark.e2e

TOKEN = "ghp-e2e-s3cret"
PASSING = """\
build:
  stage: build
  script: [echo built]
test:
  stage: test
  script: [echo tested]
"""
FAILING = "test:\n  script: [echo failing, exit 3]\n"
#: waits (up to a minute) for the test to say the forge saw the build pending
GATED = PASSING.replace(
    "script: [echo built]",
    "script: ['for i in $(seq 600); do [ -f GO ] && break; sleep 0.1; done']",
)


@pytest.fixture
def forge() -> Iterator[FakeForge]:
    with FakeForge(token=TOKEN) as fake:
        yield fake


def add_project(
    client: httpx.Client, tmp_path: Path, name: str, pipeline: str, **forge: str
) -> dict[str, object]:
    repo = tmp_path / name
    repo.mkdir()
    (repo / ".gitlab-ci.yml").write_text(pipeline)
    git_repo(repo)
    body = {"name": name, "repo_url": str(repo), "forge_token": TOKEN, **forge}
    project = client.post("/projects", json=body).raise_for_status()
    assert TOKEN not in project.text
    return dict(project.json())


def for_sha(forge: FakeForge, sha: str) -> list[Recorded]:
    return [r for r in forge.taken() if r.path.endswith(f"/statuses/{sha}")]


def test_a_build_triggered_through_the_api_posts_its_statuses(
    server: ServerProcess, forge: FakeForge, tmp_path: Path
) -> None:
    client = server.client()
    go = tmp_path / "GO"
    add_project(
        client,
        tmp_path,
        "hub",
        GATED.replace("GO", str(go)),
        forge="github",
        forge_api_url=forge.url,
        forge_repo="o/r",
    )
    add_project(
        client,
        tmp_path,
        "lab",
        FAILING,
        forge="gitlab",
        forge_api_url=forge.url + "/api/v4",
        forge_repo="g/lab",
    )

    hub = client.post("/projects/hub/builds", json={}).raise_for_status().json()
    lab = client.post("/projects/lab/builds", json={}).raise_for_status().json()
    forge.wait_for(lambda _: len(for_sha(forge, hub["sha"])) >= 1, timeout=30)
    go.touch()  # the forge saw the build pending: let it run
    assert wait_for_build(client, hub["id"])["status"] == "success"
    assert wait_for_build(client, lab["id"])["status"] == "failed"
    # the final states, not just a second report (a "running" one is pending too on GitHub)
    forge.wait_for(
        lambda _: any(r.json["state"] == "success" for r in for_sha(forge, hub["sha"])), timeout=30
    )
    forge.wait_for(lambda _: any(r.json["state"] == "failed" for r in forge.taken()), timeout=30)

    github = for_sha(forge, hub["sha"])
    assert {(r.method, r.path) for r in github} == {("POST", f"/repos/o/r/statuses/{hub['sha']}")}
    assert {r.headers["authorization"] for r in github} == {f"Bearer {TOKEN}"}
    states = [r.json["state"] for r in github]
    assert states[0] == "pending"
    assert states[-1] == "success"
    assert set(states[:-1]) == {"pending"}  # queued, then maybe running: GitHub says pending
    assert github[-1].json["context"] == "ferrous/default"
    assert github[-1].json["description"] == "Build #1 succeeded"
    assert github[-1].json["target_url"].endswith(f"/builds/{hub['id']}")

    gitlab = for_sha(forge, lab["sha"])
    assert {r.path for r in gitlab} == {f"/api/v4/projects/g%2Flab/statuses/{lab['sha']}"}
    assert {r.headers["private-token"] for r in gitlab} == {TOKEN}
    assert gitlab[-1].json["state"] == "failed"
    assert gitlab[-1].json["name"] == "ferrous/default"
    assert gitlab[-1].json["ref"] == "main"


def test_a_status_the_forge_missed_is_sent_after_a_kill_9(
    tmp_path: Path, backend_env: dict[str, str], forge: FakeForge
) -> None:
    server = ServerProcess(tmp_path / "data", agents=1, env=backend_env).start()
    try:
        client = server.client()
        add_project(
            client,
            tmp_path,
            "app",
            PASSING,
            forge="gitea",
            forge_api_url=forge.url + "/api/v1",
            forge_repo="o/app",
        )
        forge.fail(10_000, status=503)  # the forge is down
        build = client.post("/projects/app/builds", json={}).raise_for_status().json()
        assert wait_for_build(client, build["id"])["status"] == "success"
        forge.wait_for(lambda seen: len(seen) >= 2, timeout=30)  # tried, and tried again
        server.kill()
        assert forge.taken() == []
        forge.failures.clear()  # the forge is back

        server.start()
        forge.wait_for(lambda _: any(r.json["state"] == "success" for r in forge.taken()), 60)
    finally:
        server.stop()

    [taken] = forge.taken()  # only the newest state: the older ones were superseded
    assert taken.path == f"/api/v1/repos/o/app/statuses/{build['sha']}"
    assert taken.headers["authorization"] == f"token {TOKEN}"
    assert taken.json["description"] == "Build #1 succeeded"
