"""Pipeline trigger tokens on a real ``ferrous serve`` (SQLite and PostgreSQL).

The CLI creates a token; a GitLab-style ``curl -F`` call (a multipart form with
``variables[KEY]=value``) starts a build that the embedded agents run, and its job sees
``CI_PIPELINE_SOURCE=trigger`` and the variable; the revoked token is refused with 401.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import git_repo
from tests.e2e.server_process import ServerProcess, wait_for_build
from tests.e2e.test_webhooks import ferrous

pytestmark = pytest.mark.e2e

PIPELINE = """\
deploy:
  rules:
    - if: $CI_PIPELINE_SOURCE == "trigger"
  script:
    - echo "source=$CI_PIPELINE_SOURCE target=$DEPLOY_TARGET"
"""


def test_a_trigger_token_starts_a_build(server: ServerProcess, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / ".gitlab-ci.yml").write_text(PIPELINE)
    git_repo(repo)
    ferrous(server, "project", "add", "app", str(repo))
    token = ferrous(server, "project", "trigger-token", "create", "app").strip()
    url = f"{server.url}/api/v1/projects/app/trigger/pipeline"
    form = {"token": token, "ref": "main", "variables[DEPLOY_TARGET]": "staging"}

    # what `curl -X POST -F token=... -F ref=main -F "variables[DEPLOY_TARGET]=staging"` sends
    answer = httpx.post(url, files={name: (None, value) for name, value in form.items()})
    assert answer.status_code == 201, answer.text
    build = wait_for_build(server.client(), answer.json()["id"])

    assert build["status"] == "success", build
    assert (build["source"], build["ref"]) == ("trigger", "main")
    [job] = build["jobs"]
    log = server.client().get(f"/jobs/{job['id']}/log").text
    assert "source=trigger target=staging" in log

    [listed] = server.client().get("/projects/app/trigger-tokens").json()["items"]
    assert listed["last_used_at"] is not None
    ferrous(server, "project", "trigger-token", "revoke", "app", listed["id"])
    refused = httpx.post(url, data=form)  # `curl --data ...`
    assert refused.status_code == 401, refused.text
