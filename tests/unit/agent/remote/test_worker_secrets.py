"""A job's secret variables: in its shell, and masked out of the log the worker ships."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ferrous.application import commands as c
from ferrous.infrastructure.memory import PlaintextSecretBox
from tests.unit.agent.remote.conftest import Server, make_repo
from tests.unit.agent.remote.test_worker import running_worker

SECRET = "dk_live_7f3a9c2e5b1d4f8a0c6e2b9d7f1a3c5e"
PIPELINE = """
deploy:
  script:
    - echo "whole=$DEPLOY_KEY"
    - printf 'split=%s' "${DEPLOY_KEY:0:10}"; sleep 0.6; printf '%s\\n' "${DEPLOY_KEY:10}"
    - echo "length=${#DEPLOY_KEY} plain=$PLAIN_VALUE"
"""


async def test_the_job_gets_its_secrets_and_its_log_shows_none(
    server: Server, tmp_path: Path
) -> None:
    server.bus.deps = dataclasses.replace(server.bus.deps, secret_box=PlaintextSecretBox())
    repo = make_repo(tmp_path / "repo", PIPELINE, {})
    project_id = server.store.pipelines[await server.project(repo)].project_id
    for name, value, masked in (("DEPLOY_KEY", SECRET, True), ("PLAIN_VALUE", "visible", False)):
        await server.bus.handle(
            c.SetSecretVariable(project_id=project_id, name=name, value=value, masked=masked)
        )
    build = await server.trigger(repo)
    async with running_worker(server, tmp_path):
        done = await server.finished(build.id)

    job = done.job_named("deploy")
    log = server.log(job.id).decode()
    assert job.status.value == "success", log
    lines = log.splitlines()
    assert "whole=[MASKED]" in lines
    assert "split=[MASKED]" in lines
    assert f"length={len(SECRET)} plain=visible" in lines  # it was there, whole
    assert SECRET[:8] not in log
    assert SECRET[-8:] not in log
