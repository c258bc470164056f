"""The worker's artifacts, caches, reports and coverage against a real server app, its file
endpoints faked (``FakeFiles``): what reaches the server, what the job log says."""

from __future__ import annotations

import asyncio
import io
import shutil
import tarfile
import time
from dataclasses import replace
from pathlib import Path

import zstandard

from ferrous.application import commands as c
from ferrous.archive import entries, pack
from tests.unit.agent.remote.conftest import Server, make_repo
from tests.unit.agent.remote.test_worker import running_worker

BUILD_AND_TEST = """
build:
  stage: build
  script: [mkdir -p out, echo built > out/result.txt]
  artifacts:
    paths: [out/]
test:
  stage: test
  script: [cat out/result.txt]
"""


def hostile_archive(path: Path) -> None:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("../evil.txt")
        info.size = 4
        tar.addfile(info, io.BytesIO(b"evil"))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(zstandard.ZstdCompressor().compress(raw.getvalue()))


async def test_a_corrupt_download_fails_the_job_with_the_reason(
    server: Server, tmp_path: Path
) -> None:
    server.files.corrupt = True
    build = await server.trigger(make_repo(tmp_path / "repo", BUILD_AND_TEST))
    async with running_worker(server, tmp_path):
        done = await server.finished(build.id)
    test = done.job_named("test")
    assert (test.status.value, test.failure_reason) == ("failed", "runner_system_failure")
    log = server.log(test.id).decode()
    failure = "ERROR: Job failed (system failure): artifacts of build: checksum mismatch"
    assert f"{failure} (expected " in log
    assert "): the stored archive is corrupt" in log
    assert "built" not in log  # the script never ran


async def test_a_hostile_archive_is_refused_naming_the_entry(
    server: Server, tmp_path: Path
) -> None:
    pipeline = "build:\n  stage: build\n  script: ['true']\ntest:\n  stage: test\n  script: [ls]\n"
    build = await server.trigger(make_repo(tmp_path / "repo", pipeline))
    hostile_archive(server.files.artifact(server.job_id(build.id, "build")))
    async with running_worker(server, tmp_path) as worker:
        done = await server.finished(build.id)
    test = done.job_named("test")
    assert (test.status.value, test.failure_reason) == ("failed", "runner_system_failure")
    log = server.log(test.id).decode()
    assert "ERROR: Job failed (system failure): artifacts of build: ../evil.txt" in log
    assert not (worker.work_dir / "evil.txt").exists()
    assert "No artifacts of" not in server.log(done.job_named("build").id).decode()


async def test_caches_fall_back_in_order_and_are_saved(server: Server, tmp_path: Path) -> None:
    pipeline = """
job:
  script: [cat vendor/lib.txt, echo more >> vendor/lib.txt]
  cache:
    key: feature
    fallback_keys: [missing, main]
    paths: [vendor/]
"""
    seed = tmp_path / "seed"
    (seed / "vendor").mkdir(parents=True)
    (seed / "vendor/lib.txt").write_text("from main\n")
    server.files.cache("main").parent.mkdir(parents=True)
    pack(seed, ["vendor/lib.txt"], server.files.cache("main"))
    build = await server.trigger(make_repo(tmp_path / "repo", pipeline))
    async with running_worker(server, tmp_path):
        done = await server.finished(build.id)
    job = done.job_named("job")
    log = server.log(job.id).decode()
    assert job.status.value == "success", log
    assert "Successfully extracted cache main (fallback for feature)" in log
    assert "from main" in log
    gets = [r[1].rsplit("/", 1)[1] for r in server.files.requests if r[0] == "GET"]
    assert gets == ["feature", "missing", "main"]
    assert "Created cache feature" in log
    with server.files.cache("feature").open("rb") as saved:
        assert [e.path for e in entries(saved)] == ["vendor/lib.txt"]


async def test_a_cache_miss_or_failure_is_only_a_note(server: Server, tmp_path: Path) -> None:
    pipeline = "job:\n  script: [mkdir -p v, touch v/x]\n  cache:\n    key: k\n    paths: [v/]\n"
    server.files.corrupt = True
    build = await server.trigger(make_repo(tmp_path / "repo", pipeline))
    async with running_worker(server, tmp_path):
        done = await server.finished(build.id)
    log = server.log(done.job_named("job").id).decode()
    assert done.status.value == "success"
    assert "No cache found for k: continuing without it" in log
    build = await server.trigger(make_repo(tmp_path / "repo2", pipeline))  # now it exists
    async with running_worker(server, tmp_path):
        done = await server.finished(build.id)
    log = server.log(done.job_named("job").id).decode()
    assert done.status.value == "success"
    assert "WARNING: Failed to extract cache k: checksum mismatch" in log


async def test_name_reports_and_coverage_reach_the_server(server: Server, tmp_path: Path) -> None:
    pipeline = r"""
build:
  variables: {OS: linux}
  script:
    - mkdir -p out && echo bin > out/bin
    - echo '<testsuite name="s" tests="12"/>' > report.xml
    - "echo 'Code coverage: 87.5'"
  coverage: '/Code coverage: \d+(?:\.\d+)?/'
  artifacts:
    name: bin-$OS
    paths: [out/]
    reports:
      junit: [report.xml]
"""
    server.files.junit_reply = {
        "warnings": ["report.xml: not well-formed (line 3)"],
        "tests": {"total": 12, "failed": 1},
    }
    build = await server.trigger(make_repo(tmp_path / "repo", pipeline))
    async with running_worker(server, tmp_path):
        done = await server.finished(build.id)
    job = done.job_named("build")
    log = server.log(job.id).decode()
    assert job.status.value == "success", log
    assert server.files.names[job.id] == "bin-linux"
    assert "WARNING: report.xml: not well-formed (line 3)\nJUnit report: 12 tests, 1 failed" in log
    with server.files.artifact(job.id, "junit").open("rb") as report:
        assert [e.path for e in entries(report)] == ["report.xml"]
    assert [body["coverage"] for body in server.files.completes] == [87.5]


async def test_a_cancel_stops_a_stalled_download(server: Server, tmp_path: Path) -> None:
    server.files.stall = True
    pipeline = "build:\n  stage: build\n  script: ['true']\ntest:\n  stage: test\n  script: [ls]\n"
    build = await server.trigger(make_repo(tmp_path / "repo", pipeline))
    (tmp_path / "seed").mkdir()
    (tmp_path / "seed" / "f").write_bytes(b"x" * 100_000)
    server.files.artifact(server.job_id(build.id, "build")).parent.mkdir(parents=True)
    pack(tmp_path / "seed", ["f"], server.files.artifact(server.job_id(build.id, "build")))
    async with running_worker(server, tmp_path) as worker:
        async with asyncio.timeout(10):
            await server.files.stalled.wait()
        await server.bus.handle(c.CancelBuild(build_id=build.id))
        started = time.monotonic()
        async with asyncio.timeout(5):
            while worker.running:
                await asyncio.sleep(0.02)
        took = time.monotonic() - started
        assert list(worker.work_dir.glob(".transfer-*")) == []
    assert took < 1.5
    assert server.build(build.id).job_named("test").status.value == "canceled"


def bomb(seed: Path, target: Path) -> None:
    """An archive of a few kilobytes that expands to 1 MiB of zeros."""
    seed.mkdir()
    with (seed / "zeros.bin").open("wb") as out:
        out.truncate(1 << 20)
    target.parent.mkdir(parents=True, exist_ok=True)
    assert pack(seed, ["zeros.bin"], target).size < 4096


async def test_downloads_past_the_servers_cap_fail_an_artifact_and_skip_a_cache(
    server: Server, tmp_path: Path
) -> None:
    """The cap travels in the claim (``limits``): the server's own, applied by the agent."""
    server.bus.deps = replace(server.bus.deps, max_unpacked_bytes=64 << 10)
    pipeline = """
build:
  stage: build
  script: ['true']
test:
  stage: test
  script: [ls]
cached:
  stage: test
  script: [echo still runs]
  dependencies: []
  cache:
    key: deps
    policy: pull
    paths: [vendor/]
"""
    build = await server.trigger(make_repo(tmp_path / "repo", pipeline))
    bomb(tmp_path / "seed", server.files.artifact(server.job_id(build.id, "build")))
    server.files.cache("deps").parent.mkdir(parents=True)
    shutil.copy(server.files.artifact(server.job_id(build.id, "build")), server.files.cache("deps"))
    async with running_worker(server, tmp_path) as worker:
        done = await server.finished(build.id)
    test, cached = done.job_named("test"), done.job_named("cached")
    log = server.log(test.id).decode()
    assert (test.status.value, test.failure_reason) == ("failed", "runner_system_failure"), log
    assert (
        "ERROR: Job failed (system failure): artifacts of build: "
        f"archive expands past {64 << 10} bytes"
    ) in log
    assert "$ ls" not in log  # the script never ran
    log = server.log(cached.id).decode()
    assert cached.status.value == "success", log
    assert f"WARNING: Failed to extract cache deps: archive expands past {64 << 10} bytes" in log
    assert "still runs" in log
    assert not list(worker.work_dir.rglob("zeros.bin"))
