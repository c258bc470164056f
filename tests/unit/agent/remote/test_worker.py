"""The worker against a real server: claim, run, log, heartbeat, cancel, complete."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ferrous.agent.remote.client import AgentClient
from ferrous.agent.remote.worker import AgentWorker
from ferrous.application import commands as c
from ferrous.archive import entries
from tests.unit.agent.remote.conftest import REGISTRATION_TOKEN, Server, git, make_repo

ECHO = """
build:
  stage: build
  script:
    - echo "hello from $CI_JOB_NAME"
    - for i in $(seq 1 500); do echo "line $i"; done
    - echo "id=$CI_JOB_ID build=$FERROUS_BUILD_ID head=$(git rev-parse HEAD)"
    - cat input.txt
"""


@contextlib.asynccontextmanager
async def running_worker(
    server: Server,
    tmp_path: Path,
    *,
    capacity: int = 1,
    registered: int | None = None,
    heartbeat_interval: float = 0.2,
) -> AsyncIterator[AgentWorker]:
    client = AgentClient(server.url)
    await client.register(
        REGISTRATION_TOKEN, name="a1", labels=["linux"], capacity=registered or capacity
    )
    worker = AgentWorker(
        client,
        capacity=capacity,
        work_dir=tmp_path / "agent" / "a1",
        heartbeat_interval=heartbeat_interval,
        kill_grace=0.5,
    )
    task = asyncio.create_task(worker.run())
    try:
        yield worker
    finally:
        await worker.stop(graceful=False)
        await task
        await client.aclose()


async def test_a_job_runs_and_its_log_arrives_in_order(server: Server, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", ECHO, {"input.txt": "from the commit\n"})
    build = await server.trigger(repo)
    async with running_worker(server, tmp_path) as worker:
        done = await server.finished(build.id)
    job = done.job_named("build")
    assert (done.status.value, job.status.value, job.exit_code) == ("success", "success", 0)
    log = server.log(job.id).decode()
    lines = log.splitlines()
    assert "hello from build" in lines
    numbered = [line for line in lines if line.startswith("line ")]
    assert numbered == [f"line {i}" for i in range(1, 501)]
    assert f"id={job.id} build={build.id} head={build.sha}" in lines
    assert "from the commit" in lines
    assert lines[0].startswith("Running with ferrous")
    assert lines[-1] == "Job succeeded"
    assert not (worker.work_dir / job.id).exists()  # the workspace is removed


async def test_a_failing_job_reports_its_exit_code(server: Server, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", "test:\n  script: [echo before, exit 3, echo after]\n")
    build = await server.trigger(repo)
    async with running_worker(server, tmp_path):
        done = await server.finished(build.id)
    job = done.job_named("test")
    assert (job.status.value, job.exit_code, job.failure_reason) == ("failed", 3, "script_failure")
    log = server.log(job.id).decode()
    assert "before" in log
    assert "\nafter" not in log
    assert log.endswith("ERROR: Job failed: exit code 3\n")


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


async def test_cancel_build_stops_the_job_at_the_next_heartbeat(
    server: Server, tmp_path: Path
) -> None:
    pid_file = tmp_path / "sleep.pid"
    repo = make_repo(
        tmp_path / "repo", f"slow:\n  script: ['sleep 30 & echo $! > {pid_file}; wait']\n"
    )
    build = await server.trigger(repo)
    async with running_worker(server, tmp_path) as worker:
        async with asyncio.timeout(10):
            while not pid_file.exists() or not pid_file.read_text().strip():
                await asyncio.sleep(0.02)
        pid = int(pid_file.read_text())
        assert alive(pid)
        job_id = server.job_id(build.id, "slow")
        await server.bus.handle(c.CancelBuild(build_id=build.id))
        started = time.monotonic()
        async with asyncio.timeout(5):
            while alive(pid) or worker.running:
                await asyncio.sleep(0.02)
        took = time.monotonic() - started
        completes = [p for m, p in server.recorder.calls if p.endswith("/complete")]
    assert took < 1.5
    job = server.build(build.id).job_named("slow")
    assert job.status.value == "canceled"
    assert [a.status.value for a in job.history] == ["canceled"]
    assert completes == []  # the server decided: nothing to report
    assert job_id == job.id


async def test_the_agent_runs_at_most_capacity_jobs(server: Server, tmp_path: Path) -> None:
    stamps = tmp_path / "stamps"
    stamps.mkdir()
    pipeline = "".join(
        f"job{n}:\n  script:\n    - date +%s.%N > {stamps}/job{n}.start\n"
        f"    - sleep 0.4\n    - date +%s.%N > {stamps}/job{n}.end\n"
        for n in range(5)
    )
    repo = make_repo(tmp_path / "repo", pipeline)
    build = await server.trigger(repo)
    # The server would lease it 10 jobs at once: the worker must hold back itself.
    async with running_worker(server, tmp_path, capacity=2, registered=10):
        done = await server.finished(build.id)
    assert [j.status.value for j in done.jobs.values()] == ["success"] * 5
    spans = [
        (float((stamps / f"job{n}.start").read_text()), float((stamps / f"job{n}.end").read_text()))
        for n in range(5)
    ]
    overlap = max(sum(1 for s, e in spans if s <= t < e) for t, _ in spans)
    assert overlap == 2


async def test_a_clone_that_fails_is_a_runner_system_failure(
    server: Server, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path / "repo", "test:\n  script: [echo hi]\n")
    build = await server.trigger(repo)
    git(repo, "checkout", "-q", "--orphan", "other")
    git(repo, "commit", "-q", "--allow-empty", "-m", "other")
    git(repo, "branch", "-D", "main")
    git(repo, "reflog", "expire", "--expire=now", "--all")
    git(repo, "gc", "-q", "--prune=now")  # the build's commit is gone
    async with running_worker(server, tmp_path):
        done = await server.finished(build.id)
    job = done.job_named("test")
    assert (job.status.value, job.exit_code) == ("failed", None)
    assert job.failure_reason == "runner_system_failure"
    log = server.log(job.id).decode()
    assert f"ERROR: Job failed (system failure): commit {build.sha} is not in main of" in log


async def test_artifacts_of_dependencies_come_from_the_server(
    server: Server, tmp_path: Path
) -> None:
    pipeline = """
build:
  stage: build
  script: [mkdir -p out, echo built > out/result.txt]
  artifacts:
    paths: [out/]
test:
  stage: test
  script: [cat out/result.txt]
"""
    repo = make_repo(tmp_path / "repo", pipeline)
    build = await server.trigger(repo)
    async with running_worker(server, tmp_path):
        done = await server.finished(build.id)
    assert done.status.value == "success"
    test = done.job_named("test")
    assert "\nbuilt\n" in server.log(test.id).decode()
    with server.files.artifact(done.job_named("build").id).open("rb") as stored:
        assert [e.path for e in entries(stored)] == ["out/result.txt"]
    assert list((tmp_path / "agent" / "a1").glob(".transfer-*")) == []  # archives removed


@pytest.mark.parametrize("graceful", [True, False])
async def test_stopping_waits_for_or_cancels_the_running_job(
    server: Server, tmp_path: Path, graceful: bool
) -> None:
    marker = tmp_path / "started"
    repo = make_repo(tmp_path / "repo", f"job:\n  script: [touch {marker}, sleep 1, echo done]\n")
    build = await server.trigger(repo)
    client = AgentClient(server.url)
    await client.register(REGISTRATION_TOKEN, name="a1")
    worker = AgentWorker(client, work_dir=tmp_path / "a1", heartbeat_interval=0.2, kill_grace=0.5)
    task = asyncio.create_task(worker.run())
    async with asyncio.timeout(10):
        while not marker.exists():
            await asyncio.sleep(0.02)
    await worker.stop(graceful=graceful)
    await task
    await client.aclose()
    job = server.build(build.id).job_named("job")
    if graceful:
        assert (job.status.value, job.exit_code) == ("success", 0)
    else:
        assert (job.status.value, job.failure_reason) == ("failed", "runner_system_failure")
        assert "done" not in server.log(job.id).decode()


async def test_a_server_outage_during_a_job_loses_no_log(server: Server, tmp_path: Path) -> None:
    repo = make_repo(
        tmp_path / "repo",
        "job:\n  script: ['for i in $(seq 1 40); do echo $i; sleep 0.025; done']\n",
    )
    build = await server.trigger(repo)
    async with running_worker(server, tmp_path):
        job_id = server.job_id(build.id, "job")
        async with asyncio.timeout(10):
            while b"\n5\n" not in server.log(job_id):
                await asyncio.sleep(0.01)
        server.recorder.down = True  # every call answers 503 for a while
        await asyncio.sleep(0.6)
        server.recorder.down = False
        done = await server.finished(build.id)
    assert done.job_named("job").status.value == "success"
    lines = server.log(job_id).decode().splitlines()
    assert [line for line in lines if line.isdigit()] == [str(i) for i in range(1, 41)]
    assert server.recorder.calls.count(("POST", f"/api/v1/agent/jobs/{job_id}/complete")) == 1


async def test_a_refused_log_chunk_cancels_the_job_without_waiting_for_a_heartbeat(
    server: Server, tmp_path: Path
) -> None:
    repo = make_repo(
        tmp_path / "repo", "job:\n  script: ['while true; do echo tick; sleep 0.05; done']\n"
    )
    build = await server.trigger(repo)
    async with running_worker(server, tmp_path, heartbeat_interval=60) as worker:  # none soon
        job_id = server.job_id(build.id, "job")
        async with asyncio.timeout(10):
            while b"tick" not in server.log(job_id):
                await asyncio.sleep(0.01)
        await server.bus.handle(c.CancelBuild(build_id=build.id))
        async with asyncio.timeout(3):
            while worker.running:
                await asyncio.sleep(0.02)
    assert server.build(build.id).job_named("job").status.value == "canceled"
