"""The agents of ``ferrous serve``: registered over HTTP, run until cancelled."""

from __future__ import annotations

import asyncio
from pathlib import Path

from ferrous.agent.remote.embedded import run_embedded_agents
from tests.unit.agent.remote.conftest import REGISTRATION_TOKEN, Server, git, make_repo

PIPELINE = """
a:
  stage: build
  script: [sleep 0.5, mkdir -p out, echo "from a" > out/a.txt]
  artifacts: {paths: [out/]}
b:
  stage: build
  script: [sleep 0.5, echo "b on $CI_BUILDS_DIR"]
c:
  stage: test
  script: [cat out/a.txt]
"""


async def test_embedded_agents_run_builds_and_cancel_their_jobs_when_stopped(
    server: Server, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path / "repo", PIPELINE)
    build = await server.trigger(repo)
    agents = asyncio.create_task(
        run_embedded_agents(
            server.url,
            REGISTRATION_TOKEN,
            2,
            tmp_path / "agents",
            ("linux",),
            heartbeat_interval=0.2,
            kill_grace=0.5,
        )
    )
    done = await server.finished(build.id)
    assert done.status.value == "success"
    assert "\nfrom a\n" in server.log(done.job_named("c").id).decode()
    ran_on = {job.agent_id for job in done.jobs.values()}
    registered = sorted(server.store.agents.values(), key=lambda a: a.name)
    assert [a.name for a in registered] == ["embedded-1", "embedded-2"]
    assert ran_on == {a.id for a in registered}  # a and b ran at the same time
    for agent in registered:
        assert (agent.capacity, agent.labels, agent.platform["embedded"]) == (
            1,
            frozenset({"linux"}),
            True,
        )
        assert {"os", "arch", "cpus", "memory", "version"} <= agent.platform.keys()

    started = tmp_path / "started"
    (repo / ".gitlab-ci.yml").write_text(f"slow:\n  script: [touch {started}, sleep 30]\n")
    git(repo, "commit", "-qam", "slow")
    slow = await server.trigger(repo)
    async with asyncio.timeout(10):
        while not started.exists():
            await asyncio.sleep(0.02)
    agents.cancel()
    async with asyncio.timeout(5):
        results = await asyncio.gather(agents, return_exceptions=True)
    assert isinstance(results[0], asyncio.CancelledError)
    job = server.build(slow.id).job_named("slow")
    assert (job.status.value, job.failure_reason) == ("failed", "runner_system_failure")
