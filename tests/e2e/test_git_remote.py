"""A real ``ferrous serve`` builds a project served by a token-protected git HTTP server.

The server's mirror reads the pipeline file with the token; the embedded agents fetch the
commit with it (shallow, through their git cache; ``GIT_STRATEGY`` clone and none too). The
token shows in no job log, no API answer and no server log. Plain HTTP on 127.0.0.1 with
basic auth stands for a forge's HTTPS.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.server_process import ServerProcess, wait_for_build
from tests.git_servers import GitHttpServer, ServedRepo

pytestmark = pytest.mark.e2e

TOKEN = "glpat-E2eTok3nNeverShown"
PIPELINE = """
stages: [build, test]
build:
  stage: build
  script:
    - test "$(git rev-parse HEAD)" = "$CI_COMMIT_SHA"
    - echo "depth $(git rev-list --count HEAD)"
    - cat hello.txt
shallow:
  stage: test
  variables: {GIT_DEPTH: "1"}
  script: ['test "$(git rev-list --count HEAD)" = 1']
cloned:
  stage: test
  variables: {GIT_STRATEGY: clone}
  script: [test -f hello.txt, git remote get-url origin]
nothing:
  stage: test
  variables: {GIT_STRATEGY: none}
  script: [test ! -e hello.txt]
"""


@pytest.fixture
def git_server(tmp_path: Path) -> Iterator[tuple[GitHttpServer, ServedRepo]]:
    base = tmp_path / "served"
    base.mkdir()
    repo = ServedRepo(base, "app")
    server = GitHttpServer(base, token=TOKEN).start()
    yield server, repo
    server.stop()


def test_a_project_behind_a_token(
    server: ServerProcess, git_server: tuple[GitHttpServer, ServedRepo]
) -> None:
    http, repo = git_server
    for n in range(25):
        repo.commit({"hello.txt": f"hello {n}\n"}, f"commit {n}")
    first = repo.commit({".gitlab-ci.yml": PIPELINE}, "pipeline")
    client = server.client()
    created = client.post(
        "/projects",
        json={
            "name": "app",
            "repo_url": http.url("app"),
            "credentials": {"kind": "https_token", "token": TOKEN},
        },
    )
    assert created.status_code == 201, created.text
    assert created.json()["credentials"] == {"kind": "https_token", "set": True}

    build = client.post("/projects/app/builds", json={}).raise_for_status().json()
    done = wait_for_build(client, build["id"])
    second = repo.commit({"hello.txt": "hello again\n"}, "again")
    again = client.post("/projects/app/builds", json={}).raise_for_status().json()
    done_again = wait_for_build(client, again["id"])

    assert (done["sha"], done_again["sha"]) == (first, second)
    logs = {}
    for result in (done, done_again):
        assert result["status"] == "success", result
        for job in result["jobs"]:
            logs[result["number"], job["name"]] = client.get(f"/jobs/{job['id']}/log").text
    build_log = logs[1, "build"]
    assert "depth 20" in build_log
    assert f"Checked out {first[:8]} as detached HEAD (ref is main)" in build_log
    assert f"Fetching changes of {http.url('app')} with git depth set to 20" in build_log
    assert "Reused the agent's git cache" in logs[2, "build"]
    assert "Created fresh repository." in logs[1, "cloned"]
    assert http.url("app") in logs[1, "cloned"]
    assert "Skipping the source: GIT_STRATEGY is none" in logs[1, "nothing"]
    answers = [client.get("/projects/app").text, client.get("/projects").text]
    for text in [*logs.values(), *answers, server.log.read_text()]:
        assert TOKEN not in text
    assert {r.user for r in http.requests if r.status == 200} == {"oauth2"}
