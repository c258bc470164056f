"""What the server refuses to store or to hand out, through a real server on each store.

- An agent's upload is checked before anything is kept: a hostile archive (an entry escaping
  with ``..``, a symlink out of the workspace and a file written through it) answers 422
  ``unsafe-archive`` naming the entry, a wrong ``X-Checksum-Sha256`` 422
  ``checksum-mismatch``, a job the agent no longer holds 409; none of them leaves an object
  or a row, and an earlier good upload stays. The test plays the agent by hand: it registers
  with the registration token and claims a job tagged for it alone.
- An object that rotted in the store after it was written (its bytes replaced behind the
  server's back) is never taken for the artifact: the job that needs it fails saying so, and
  ``ferrous artifacts download`` fails without leaving a file.
- A zip bomb put in place of an artifact behind the server's back (its row changed to match,
  as a tampering hand with database access would) is stopped by the agent: the claim
  carries the server's ``FERROUS_ARTIFACT_MAX_UNPACKED_BYTES``, and the job that needs it
  fails naming the dependency and the limit.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import sqlite3
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import zstandard

from ferrous.archive import PackedArchive, pack
from tests.auth import bearer
from tests.e2e.conftest import git_repo
from tests.e2e.object_stores import STORES, StoreView, open_store
from tests.e2e.server_process import ServerProcess, wait_for_build

pytestmark = pytest.mark.e2e


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreView]:
    with open_store(request.param, tmp_path / "data") as opened:
        yield opened


TOKEN = "e2e-artifact-safety-token"
MAX_UNPACKED = 4 << 20  # the server's cap: far above what the good archives here expand to
Members = list[tuple[tarfile.TarInfo, bytes | None]]  # an archive built by hand
HELD = "held:\n  tags: [by-hand]\n  script: [echo never runs]\n"
CORRUPTIBLE = """\
stages: [build, deploy]
build:
  stage: build
  script:
    - mkdir -p out && head -c 200000 /dev/urandom > out/payload.bin && echo ok > out/ok.txt
  artifacts:
    paths: [out/]
deploy:
  stage: deploy
  when: manual
  needs: [build]
  script: [cat out/ok.txt]
bundle:
  stage: build
  script: [mkdir -p bundle && echo packed > bundle/readme.txt]
  artifacts:
    paths: [bundle/]
unpack:
  stage: deploy
  when: manual
  needs: [bundle]
  script: [cat bundle/readme.txt]
"""


@pytest.fixture
def safe_server(store: StoreView) -> Iterator[ServerProcess]:
    """SQLite, one embedded agent without labels (it never takes the ``by-hand`` jobs)."""
    env = {
        **store.env,
        "FERROUS_AGENT_REGISTRATION_TOKEN": TOKEN,
        "FERROUS_ARTIFACT_MAX_UNPACKED_BYTES": str(MAX_UNPACKED),
    }
    process = ServerProcess(store.data_dir, agents=1, env=env).start()
    try:
        yield process
    finally:
        process.stop()


def ferrous(server: ServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ferrous", *args],
        env=server.cli_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def trigger(server: ServerProcess, folder: Path, pipeline: str) -> tuple[httpx.Client, str]:
    folder.mkdir()
    (folder / ".gitlab-ci.yml").write_text(pipeline)
    git_repo(folder)
    client = server.client()
    client.post("/projects", json={"name": folder.name, "repo_url": str(folder)})
    build = client.post(f"/projects/{folder.name}/builds", json={}).raise_for_status().json()
    return client, str(build["id"])


def agent_by_hand(server: ServerProcess) -> httpx.Client:
    joined = httpx.post(
        server.url + "/api/v1/agent/register",
        json={"token": TOKEN, "name": "by-hand", "labels": ["by-hand"]},
    )
    assert joined.status_code == 201, joined.text
    return httpx.Client(
        base_url=server.url + "/api/v1/agent", headers=bearer(joined.json()["token"]), timeout=60
    )


def claim(agent: httpx.Client) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        got = agent.post("/claim")
        if got.status_code == 200:
            job: dict[str, Any] = got.json()
            return job
        assert got.status_code == 204, got.text
    raise AssertionError("no job was leased to the agent")


def tar_zst(members: Members) -> bytes:
    """An archive built by hand: the server must judge it, whoever made it."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return zstandard.ZstdCompressor(level=3).compress(raw.getvalue())


def entry(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    info.mode = 0o777 if kind == tarfile.SYMTYPE else 0o644
    return info


def upload(
    agent: httpx.Client, job_id: str, body: bytes, checksum: str | None = None
) -> httpx.Response:
    headers = {
        "X-Checksum-Sha256": checksum or hashlib.sha256(body).hexdigest(),
        "Content-Type": "application/zstd",
    }
    return agent.put(
        f"/jobs/{job_id}/artifacts/archive",
        params={"name": "hostile"},
        content=body,
        headers=headers,
    )


def assert_problem(answer: httpx.Response, status: int, kind: str, *mentions: str) -> None:
    assert answer.status_code == status, answer.text
    problem = answer.json()
    assert problem["type"].endswith(kind), problem
    for text in mentions:
        assert text in problem.get("detail", ""), problem


#: archive members -> the entry the refusal must name
HOSTILE: dict[str, tuple[Members, str]] = {
    "dot-dot": ([(entry("../evil"), b"pwned")], "../evil"),
    "absolute": ([(entry("/tmp/evil-absolute"), b"pwned")], "/tmp/evil-absolute"),
    "symlink-out": (
        [(entry("etc", tarfile.SYMTYPE, "/etc"), None), (entry("etc/evil"), b"pwned")],
        "etc",
    ),
    "through-symlink": (
        [(entry("up", tarfile.SYMTYPE, ".."), None), (entry("up/evil"), b"pwned")],
        "up",
    ),
}


def test_uploads_are_checked_before_anything_is_kept(
    safe_server: ServerProcess,
    store: StoreView,
    tmp_path: Path,
) -> None:
    client, build_id = trigger(safe_server, tmp_path / "held", HELD)
    agent = agent_by_hand(safe_server)
    job = claim(agent)
    job_id = job["job_id"]
    assert job["build_id"] == build_id

    for name, (members, culprit) in HOSTILE.items():
        answer = upload(agent, job_id, tar_zst(members))
        assert_problem(answer, 422, "unsafe-archive", culprit)
        assert client.get(f"/jobs/{job_id}/artifacts").json()["items"] == [], name
        assert store.keys("artifacts/") == [], (name, store.keys())
    assert not (tmp_path / "evil").exists()
    assert_problem(upload(agent, job_id, b"not zstd at all"), 422, "corrupt-archive")

    workspace = tmp_path / "workspace"
    (workspace / "dist").mkdir(parents=True)
    (workspace / "dist" / "good.txt").write_text("good\n")
    good = pack(workspace, ["dist/good.txt"], tmp_path / "good.tar.zst")
    body = good.path.read_bytes()
    stored = upload(agent, job_id, body, good.sha256)
    assert stored.status_code == 201, stored.text
    assert stored.json()["sha256"] == good.sha256
    assert stored.json()["size"] == good.size
    assert stored.json()["files"] == 1
    keys = store.keys("artifacts/")
    assert len(keys) == 1, keys

    (workspace / "dist" / "good.txt").write_text("other\n")
    other = pack(workspace, ["dist/good.txt"], tmp_path / "other.tar.zst")
    answer = upload(agent, job_id, other.path.read_bytes(), good.sha256)  # the wrong sum
    assert_problem(answer, 422, "checksum-mismatch")
    assert store.keys("artifacts/") == keys  # the good one stays, nothing else came
    items = client.get(f"/jobs/{job_id}/artifacts").json()["items"]
    assert [item["sha256"] for item in items] == [good.sha256]

    back = agent.get(f"/jobs/{job_id}/dependencies/{job_id}/artifacts")
    assert back.status_code == 200, back.text
    assert back.content == body
    assert back.headers["x-checksum-sha256"] == good.sha256

    done = agent.post(
        f"/jobs/{job_id}/complete", json={"attempt": 1, "exit_code": 0, "failure_reason": None}
    )
    assert done.status_code == 200, done.text
    late = upload(agent, job_id, other.path.read_bytes(), other.sha256)
    assert late.status_code == 409, late.text  # no lease any more
    assert store.keys("artifacts/") == keys


def test_a_rotten_object_is_never_taken_for_the_artifact(
    safe_server: ServerProcess,
    store: StoreView,
    tmp_path: Path,
) -> None:
    client, build_id = trigger(safe_server, tmp_path / "rot", CORRUPTIBLE)

    def jobs() -> dict[str, dict[str, Any]]:
        build = client.get(f"/builds/{build_id}").raise_for_status().json()
        return {job["name"]: job for job in build["jobs"]}

    deadline = time.monotonic() + 90
    for name in ("build", "bundle"):
        while (build := jobs()[name])["status"] != "success":
            log = client.get(f"/jobs/{build['id']}/log").text
            assert build["status"] in ("created", "pending", "running"), (build, log)
            assert time.monotonic() < deadline, (build, log)
            time.sleep(0.1)
    build_job, bundle_job = jobs()["build"]["id"], jobs()["bundle"]["id"]
    [key] = [k for k in store.keys("artifacts/") if f"/{build_job}/" in k]
    original = store.read(key)
    store.write(key, os.urandom(len(original)))  # same size: only the checksum can tell

    target = tmp_path / "download" / "artifacts.tar.zst"
    target.parent.mkdir()
    fetched = ferrous(safe_server, "artifacts", "download", build_job, "-o", str(target))
    assert fetched.returncode != 0, fetched.stdout
    assert "checksum mismatch" in (fetched.stdout + fetched.stderr).lower(), fetched
    assert list(target.parent.iterdir()) == []  # not even a partial file

    [bundle_key] = [k for k in store.keys("artifacts/") if f"/{bundle_job}/" in k]
    bomb = zip_bomb(tmp_path / "bomb")
    store.write(bundle_key, bomb.path.read_bytes())
    with contextlib.closing(sqlite3.connect(store.data_dir / "ferrous.db", timeout=30)) as db:
        db.execute(
            "UPDATE artifacts SET sha256 = ?, size = ? WHERE object_key = ?",
            (bomb.sha256, bomb.size, bundle_key),
        )
        db.commit()

    for name in ("deploy", "unpack"):
        client.post(f"/jobs/{jobs()[name]['id']}/play").raise_for_status()
    finished = wait_for_build(client, build_id, timeout=90)
    deploy = {job["name"]: job for job in finished["jobs"]}["deploy"]
    log = client.get(f"/jobs/{deploy['id']}/log").text
    assert deploy["status"] == "failed", log
    assert "checksum mismatch" in log.lower(), log
    assert "$ cat out/ok.txt" not in log  # the script never ran on rotten files

    unpack = {job["name"]: job for job in finished["jobs"]}["unpack"]
    log = client.get(f"/jobs/{unpack['id']}/log").text
    assert unpack["status"] == "failed", log
    assert f"artifacts of bundle: archive expands past {MAX_UNPACKED} bytes" in log, log
    assert "$ cat bundle/readme.txt" not in log


def zip_bomb(folder: Path) -> PackedArchive:
    """A few kilobytes that expand to twice the server's cap."""
    folder.mkdir()
    with (folder / "zeros.bin").open("wb") as out:
        out.truncate(2 * MAX_UNPACKED)
    return pack(folder, ["zeros.bin"], folder.with_suffix(".tar.zst"))
