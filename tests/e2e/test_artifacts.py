"""Artifacts, caches, test reports and log archives through a real server and real agents.

A real ``ferrous serve --agents 0`` on each object store (the default folder, S3 on a
``moto_server``) and each database, two ``ferrous agent`` processes in folders of their own
(``builder`` and ``tester``, chosen by tags), so every file that reaches a later job crossed
the server. The pipeline builds an executable and a few MB of random bytes; ``test`` runs the
executable, writes a JUnit report (two passes, one failure: the job fails, allowed) and its
coverage, and fills a cache; ``deploy`` needs only ``build``'s artifacts. Then everything is
checked from outside: the API (statuses, artifact listings, downloads and their checksums,
one-file reads, the test report, coverage, logs served from their archive with ranges), the
CLI, and the objects in the store itself. A second build of the same commit, on a fresh
``tester`` agent, restores the cache the first one saved.
"""

from __future__ import annotations

import hashlib
import io
import os
import sqlite3
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from ferrous.archive import unpack
from tests.e2e.conftest import git_repo
from tests.e2e.object_stores import STORES, StoreView, open_store
from tests.e2e.server_process import ServerProcess, wait_for_build
from tests.e2e.test_remote_agents import TOKEN, AgentProcess

pytestmark = pytest.mark.e2e


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreView]:
    with open_store(request.param, tmp_path / "data") as opened:
        yield opened


APP = b'#!/bin/sh\necho "app says hello"\n'
BLOB_SIZE = 9 * 1024 * 1024 + 17  # over one 8 MiB part: S3 uploads it in parts
JUNIT = """\
<?xml version="1.0" encoding="UTF-8"?>
<testsuites>
  <testsuite name="unit" tests="3" failures="1" errors="0" skipped="0" time="0.6">
    <testcase classname="app.tests" name="test_hello" time="0.1"/>
    <testcase classname="app.tests" name="test_exit_code" time="0.2"/>
    <testcase classname="app.tests" name="test_arithmetic" time="0.3">
      <failure message="expected 2, got 3" type="AssertionError"
        >assert 1 + 1 == 3: expected 2, got 3</failure>
    </testcase>
  </testsuite>
</testsuites>
"""
PIPELINE = r"""
stages: [build, test, deploy]

build:
  stage: build
  tags: [builder]
  script:
    - mkdir -p bin
    - cp src/app.sh bin/app && chmod +x bin/app
    - cp assets/blob.bin bin/blob.bin
  artifacts:
    name: "app-$CI_COMMIT_REF_SLUG"
    paths: [bin/]
    expire_in: 1 week

test:
  stage: test
  tags: [tester]
  needs: [build]
  allow_failure: true
  coverage: '/Coverage: \d+\.\d+%/'
  cache:
    key: deps-$CI_COMMIT_REF_SLUG
    paths: [deps/]
    when: always
  script:
    - ./bin/app
    - if [ -f deps/lib.txt ]; then echo "deps $(cat deps/lib.txt) from the cache"; fi
    - mkdir -p deps && echo "lib-1.0" > deps/lib.txt
    - mkdir -p test-out && echo "raw results" > test-out/results.txt
    - cp fixtures/report.xml report.xml
    - 'echo "Coverage: 87.5%"'
    - exit 1
  artifacts:
    when: always
    paths: [test-out/]
    reports:
      junit: report.xml

deploy:
  stage: deploy
  tags: [tester]
  needs:
    - job: build
      artifacts: true
  script:
    - test -x bin/app && ./bin/app
    - cmp bin/blob.bin assets/blob.bin
    - test ! -e test-out && test ! -e report.xml
    - echo "deploy saw only the build's files"
"""


def ferrous(server: ServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ferrous", *args],
        env=server.cli_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def wait_for(check: Callable[[], Any], timeout: float = 30.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"timed out waiting for {what or check}"
        time.sleep(0.1)


def jobs_of(client: httpx.Client, build_id: str) -> dict[str, dict[str, Any]]:
    build = client.get(f"/builds/{build_id}").raise_for_status().json()
    return {job["name"]: job for job in build["jobs"]}


@pytest.fixture
def storage_server(
    store: StoreView,
    backend_env: dict[str, str],
) -> Iterator[ServerProcess]:
    env = {**backend_env, **store.env, "FERROUS_AGENT_REGISTRATION_TOKEN": TOKEN}
    process = ServerProcess(store.data_dir, agents=0, env=env).start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def agent_pool(
    tmp_path: Path, storage_server: ServerProcess
) -> Iterator[Callable[[str, str], AgentProcess]]:
    """Agents in folders of their own (``tmp/<name>/work``): no folder shared between them."""
    started: list[AgentProcess] = []

    def start(name: str, labels: str) -> AgentProcess:
        work = tmp_path / name / "work"
        work.mkdir(parents=True)
        agent = AgentProcess(work, [storage_server.url], labels=labels, capacity=2)
        started.append(agent)
        return agent.start()

    try:
        yield start
    finally:
        for agent in started:
            agent.stop()


def make_repo(folder: Path) -> tuple[Path, bytes]:
    folder.mkdir()
    blob = os.urandom(BLOB_SIZE)
    (folder / ".gitlab-ci.yml").write_text(PIPELINE)
    (folder / "src").mkdir()
    (folder / "src" / "app.sh").write_bytes(APP)
    (folder / "assets").mkdir()
    (folder / "assets" / "blob.bin").write_bytes(blob)
    (folder / "fixtures").mkdir()
    (folder / "fixtures" / "report.xml").write_text(JUNIT)
    return git_repo(folder), blob


def test_artifacts_caches_reports_and_logs(
    storage_server: ServerProcess,
    store: StoreView,
    agent_pool: Callable[[str, str], AgentProcess],
    tmp_path: Path,
) -> None:
    server = storage_server
    repo, blob = make_repo(tmp_path / "repo")
    agent_pool("builder", "builder")
    tester = agent_pool("tester", "tester")
    client = server.client()
    client.post("/projects", json={"name": "app", "repo_url": str(repo)}).raise_for_status()
    build = client.post("/projects/app/builds", json={}).raise_for_status().json()
    done = wait_for_build(client, build["id"], timeout=180)
    jobs = {job["name"]: job for job in done["jobs"]}
    logs = {name: client.get(f"/jobs/{job['id']}/log").text for name, job in jobs.items()}
    assert done["status"] == "success", (done["problems"], jobs, logs)
    assert jobs["build"]["status"] == "success", logs["build"]
    assert jobs["test"]["status"] == "failed", logs["test"]
    assert jobs["test"]["failure_allowed"] or jobs["test"]["allow_failure"]
    assert jobs["deploy"]["status"] == "success", logs["deploy"]
    assert "app says hello" in logs["test"]
    assert "deploy saw only the build's files" in logs["deploy"]
    assert "deps lib-1.0 from the cache" not in logs["test"]  # (the command line says $(cat)

    build_id = jobs["build"]["id"]
    _check_build_artifacts(client, build_id, blob, tmp_path)
    _check_test_job(client, build["id"], jobs["test"]["id"])
    listed = client.get(f"/jobs/{jobs['deploy']['id']}/artifacts").raise_for_status().json()
    assert listed["items"] == []  # deploy keeps nothing
    _check_cli(server, build_id, blob, tmp_path)
    _check_logs(client, store, jobs)
    assert store.keys("caches/"), store.keys()
    assert len(store.keys("artifacts/")) == 3, store.keys()  # build: archive; test: archive, junit

    # the second build of the commit, on a tester that never saw the first: the cache is
    # the server's
    tester.stop()
    agent_pool("tester-2", "tester")
    again = client.post("/projects/app/builds", json={}).raise_for_status().json()
    second = wait_for_build(client, again["id"], timeout=180)
    retest = {job["name"]: job for job in second["jobs"]}["test"]
    log = client.get(f"/jobs/{retest['id']}/log").text
    assert second["status"] == "success", log
    assert "Successfully extracted cache" in log, log
    assert "deps lib-1.0 from the cache" in log, log
    assert len(store.keys("artifacts/")) == 6, store.keys()


def _check_build_artifacts(client: httpx.Client, job_id: str, blob: bytes, tmp_path: Path) -> None:
    items = client.get(f"/jobs/{job_id}/artifacts").raise_for_status().json()["items"]
    assert [item["kind"] for item in items] == ["archive"], items
    item = items[0]
    assert item["name"] == "app-main"
    assert item["filename"] == "app-main.tar.zst"
    assert item["files"] == 2, item  # bin/app, bin/blob.bin
    assert item["size"] > BLOB_SIZE  # random bytes do not compress
    assert len(item["sha256"]) == 64
    created = datetime.fromisoformat(item["created_at"])
    expires = datetime.fromisoformat(item["expires_at"])
    assert abs(expires - created - timedelta(weeks=1)) < timedelta(minutes=5), item

    members = client.get(f"/jobs/{job_id}/artifacts/files").raise_for_status().json()
    assert members["truncated"] is False
    files = {m["path"]: m for m in members["items"] if m["kind"] == "file"}
    assert files["bin/app"]["size"] == len(APP)
    assert files["bin/blob.bin"]["size"] == BLOB_SIZE

    got = client.get(f"/jobs/{job_id}/artifacts/download")
    assert got.status_code == 200, got.text
    assert got.headers["x-checksum-sha256"] == sha256(got.content) == item["sha256"]
    assert len(got.content) == item["size"]
    assert 'filename="app-main.tar.zst"' in got.headers["content-disposition"]
    unpacked = tmp_path / "unpacked"
    unpacked.mkdir()
    assert unpack(io.BytesIO(got.content), unpacked) == 2
    assert (unpacked / "bin" / "app").read_bytes() == APP
    assert (unpacked / "bin" / "app").stat().st_mode & stat.S_IXUSR
    assert (unpacked / "bin" / "blob.bin").read_bytes() == blob

    one = client.get(f"/jobs/{job_id}/artifacts/files/bin/blob.bin")
    assert one.status_code == 200
    assert one.content == blob
    assert client.get(f"/jobs/{job_id}/artifacts/files/bin/app").content == APP
    assert client.get(f"/jobs/{job_id}/artifacts/files/bin/nothing").status_code == 404


def _check_test_job(client: httpx.Client, build_id: str, job_id: str) -> None:
    items = client.get(f"/jobs/{job_id}/artifacts").raise_for_status().json()["items"]
    assert sorted(item["kind"] for item in items) == ["archive", "junit"], items
    job = client.get(f"/jobs/{job_id}").raise_for_status().json()
    assert job["coverage"] == 87.5, job
    report = client.get(f"/builds/{build_id}/tests").raise_for_status().json()
    totals = report.get("totals", report)
    assert (totals["total"], totals["passed"], totals["failed"]) == (3, 2, 1), report
    assert totals["errored"] == totals["skipped"] == 0
    cases = report["cases"]["items"] if isinstance(report["cases"], dict) else report["cases"]
    assert cases[0]["name"] == "test_arithmetic", cases  # failures first
    assert cases[0]["status"] == "failed"
    assert "expected 2, got 3" in str(cases[0]), cases[0]
    assert {case["name"] for case in cases} == {"test_hello", "test_exit_code", "test_arithmetic"}


def _check_cli(server: ServerProcess, job_id: str, blob: bytes, tmp_path: Path) -> None:
    listed = ferrous(server, "artifacts", "list", job_id)
    assert listed.returncode == 0, listed.stderr
    assert "app-main" in listed.stdout, listed.stdout
    assert "archive" in listed.stdout
    target = tmp_path / "cli" / "app.tar.zst"
    target.parent.mkdir()
    fetched = ferrous(server, "artifacts", "download", job_id, "-o", str(target))
    assert fetched.returncode == 0, fetched.stderr
    archive = target.read_bytes()
    item = server.client().get(f"/jobs/{job_id}/artifacts").json()["items"][0]
    assert sha256(archive) == item["sha256"]
    out = tmp_path / "cli" / "blob.bin"
    one = ferrous(server, "artifacts", "get", job_id, "bin/blob.bin", "-o", str(out))
    assert one.returncode == 0, one.stderr
    assert out.read_bytes() == blob


def _check_logs(client: httpx.Client, store: StoreView, jobs: dict[str, dict[str, Any]]) -> None:
    """Every finished job's log went to the store; reads (and ranges) come back from there."""
    wait_for(lambda: len(store.keys("logs/")) >= len(jobs), what=f"3 logs in {store.keys()}")
    assert all(key.endswith(".log.zst") for key in store.keys("logs/"))
    database = store.data_dir / "ferrous.db"
    if database.exists():  # SQLite: the chunks went with the archiving, reads use the archive

        def archived() -> bool:
            with closing(sqlite3.connect(database)) as db:
                chunks = db.execute("SELECT count(*) FROM log_chunks").fetchone()[0]
                rows = db.execute("SELECT count(*) FROM job_logs").fetchone()[0]
            return bool(chunks == 0 and rows == len(jobs))

        wait_for(archived, what="no log chunks left, one archived log per job")
    job_id = jobs["test"]["id"]
    full = client.get(f"/jobs/{job_id}/log")
    assert full.status_code == 200
    text = full.content
    assert b"Coverage: 87.5%" in text
    assert b"app says hello" in text
    head = client.get(f"/jobs/{job_id}/log", headers={"Range": "bytes=0-99"})
    assert head.status_code == 206
    assert head.content == text[:100]
    assert head.headers["content-range"] == f"bytes 0-99/{len(text)}"
    middle = client.get(f"/jobs/{job_id}/log", headers={"Range": "bytes=50-"})
    assert middle.status_code == 206
    assert middle.content == text[50:]
    tail = client.get(f"/jobs/{job_id}/log", headers={"Range": "bytes=-40"})
    assert tail.status_code == 206
    assert tail.content == text[-40:]
    past = client.get(f"/jobs/{job_id}/log", headers={"Range": f"bytes={len(text) + 5}-"})
    assert past.status_code == 416
    assert client.get(f"/jobs/{job_id}/log", params={"offset": 10}).content == text[10:]
    assert client.get(f"/jobs/{jobs['deploy']['id']}/log").content.count(b"deploy saw") >= 1
