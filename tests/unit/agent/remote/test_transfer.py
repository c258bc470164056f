"""Files between agent and server: the client's streaming calls against ``FakeFiles`` on a
real port, and ``ServerFiles`` (the job thread's side) on an event loop of its own."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import threading
import time
import tracemalloc
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from ferrous.agent.remote.client import (
    AgentClient,
    AgentProtocolError,
    LeaseLost,
    RetryPolicy,
    ServerUnavailable,
    cache_path,
)
from ferrous.agent.remote.streams import Downloaded
from ferrous.agent.remote.transfer import ServerFiles, TransferCanceled, report_notes
from ferrous.archive import pack
from ferrous.domain.errors import ChecksumMismatch, UnsafeArchive
from tests.unit.agent.remote.conftest import bound_socket
from tests.unit.agent.remote.fake_files import FakeFiles

FAST = RetryPolicy(initial=0.02, max_delay=0.1, give_up_after=5.0)
JOB = "job-1"


@contextlib.asynccontextmanager
async def serving(files: FakeFiles) -> AsyncIterator[AgentClient]:
    sock = bound_socket()
    config = uvicorn.Config(files, log_level="critical", lifespan="off", access_log=False)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    host, port = sock.getsockname()[:2]
    client = AgentClient(f"http://{host}:{port}", token="agent-token", retry=FAST)
    try:
        yield client
    finally:
        await client.aclose()
        server.should_exit = True
        server.force_exit = True
        await task


@pytest.fixture
def files(tmp_path: Path) -> FakeFiles:
    return FakeFiles(tmp_path / "server")


def random_file(path: Path, size: int) -> str:
    digest = hashlib.sha256()
    with path.open("wb") as sink:
        for _ in range(size // (1 << 20)):
            piece = os.urandom(1 << 20)
            digest.update(piece)
            sink.write(piece)
    return digest.hexdigest()


async def test_an_upload_streams_with_its_checksum(files: FakeFiles, tmp_path: Path) -> None:
    source = tmp_path / "big.tar.zst"
    sha = random_file(source, 32 << 20)
    async with serving(files) as client:
        tracemalloc.start()
        try:
            reply = await client.upload_artifacts(JOB, "archive", source, sha, name="bin-linux")
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert peak < 8 << 20  # a 32 MiB upload: a piece at a time, never the whole
    assert (reply["size"], reply["sha256"], reply["name"]) == (32 << 20, sha, "bin-linux")
    method, path, query, headers, _ = files.requests[0]
    assert (method, path, query) == (
        "PUT",
        f"/api/v1/agent/jobs/{JOB}/artifacts/archive",
        "name=bin-linux",
    )
    assert headers["x-checksum-sha256"] == sha
    assert headers["content-type"] == "application/zstd"
    assert headers["content-length"] == str(32 << 20)
    assert headers["authorization"] == "Bearer agent-token"
    assert files.artifact(JOB).read_bytes() == source.read_bytes()


async def test_a_download_streams_into_a_file(files: FakeFiles, tmp_path: Path) -> None:
    stored = files.artifact("build-job")
    stored.parent.mkdir(parents=True)
    sha = random_file(stored, 32 << 20)
    target = tmp_path / "got"
    async with serving(files) as client:
        tracemalloc.start()
        try:
            got = await client.download_artifacts(JOB, "build-job", target)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert await client.download_artifacts(JOB, "no-such-job", tmp_path / "x") is None
    assert peak < 8 << 20
    assert got == Downloaded(32 << 20, sha, sha)
    assert target.read_bytes() == stored.read_bytes()


async def test_503_is_retried_and_the_body_sent_again_whole(
    files: FakeFiles, tmp_path: Path
) -> None:
    source = tmp_path / "a"
    sha = random_file(source, 3 << 20)
    files.fail_next = 2
    async with serving(files) as client:
        reply = await client.upload_cache(JOB, "deps/main", source, sha)
        assert reply["sha256"] == sha  # the server checked the third body's checksum
        files.fail_next = 1
        got = await client.download_cache(JOB, "deps/main", tmp_path / "b")
    assert got is not None
    assert got.sha256 == sha
    puts = [r for r in files.requests if r[0] == "PUT"]
    assert len(puts) == 3
    assert all(sum(r[4]) == 3 << 20 for r in puts)
    assert puts[0][1] == f"/api/v1/agent/jobs/{JOB}/caches/deps/main"  # %2F, decoded


async def test_a_checksum_mismatch_or_a_cut_body_is_an_error(
    files: FakeFiles, tmp_path: Path
) -> None:
    stored = files.artifact("build-job")
    stored.parent.mkdir(parents=True)
    sha = random_file(stored, 2 << 20)
    files.corrupt = True
    async with serving(files) as client:
        with pytest.raises(ChecksumMismatch) as mismatch:
            await client.download_artifacts(JOB, "build-job", tmp_path / "x")
        files.corrupt, files.cut_short = False, True
        started = time.monotonic()
        with pytest.raises(ServerUnavailable, match="cut short 4 times"):
            await client.download_artifacts(JOB, "build-job", tmp_path / "x")
        assert time.monotonic() - started < 3
    assert str(mismatch.value).startswith("checksum mismatch (expected ")
    assert f"got {sha[:12]}..): the stored archive is corrupt" in str(mismatch.value)
    assert len([r for r in files.requests if r[0] == "GET"]) == 5


async def test_refusals_are_typed(files: FakeFiles, tmp_path: Path) -> None:
    source = tmp_path / "a"
    random_file(source, 1 << 20)
    async with serving(files) as client:
        with pytest.raises(AgentProtocolError, match="HTTP 422"):
            await client.upload_artifacts(JOB, "archive", source, "0" * 64)
    files.app = None

    async def lease_gone(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 409, "headers": []})
        await send({"type": "http.response.body", "body": b'{"detail": "not yours"}'})

    async with serving(lease_gone) as client:  # type: ignore[arg-type]  # any ASGI app
        with pytest.raises(LeaseLost):
            await client.download_artifacts(JOB, "x", tmp_path / "x")
        with pytest.raises(LeaseLost):
            await client.upload_cache(JOB, "k", source, "0" * 64)


def test_cache_keys_are_one_path_segment() -> None:
    assert cache_path("deps/main v1") == "deps%2Fmain%20v1"
    assert cache_path("..") == "%2E%2E"
    assert cache_path(".") == "%2E"
    assert cache_path("a..b") == "a..b"


def test_report_notes() -> None:
    reply = {
        "warnings": ["report.xml: not well-formed (line 3)"],
        "tests": {"total": 12, "failed": 1},
    }
    assert report_notes("junit", 2, reply) == [
        "WARNING: report.xml: not well-formed (line 3)",
        "JUnit report: 12 tests, 1 failed",
    ]
    assert report_notes("junit", 2, {"tests": None}) == ["Uploaded the JUnit report (2 files)"]


# -- ServerFiles: blocking calls from a job's thread ---------------------------------------


class FakeApi:
    """A FileApi in memory: archives by (what, key); ``hang`` makes downloads wait for ever."""

    def __init__(self) -> None:
        self.stored: dict[tuple[str, str], bytes] = {}
        self.asked: list[tuple[str, str]] = []
        self.hang = False
        self.started = threading.Event()

    async def upload_artifacts(
        self, job_id: str, kind: str, source: Path, sha256: str, *, name: str | None = None
    ) -> dict[str, Any]:
        self.stored[("artifacts", job_id if kind == "archive" else f"{job_id}.{kind}")] = (
            source.read_bytes()
        )
        return {"warnings": [], "tests": {"total": 3, "failed": 0}}

    async def download_artifacts(
        self, job_id: str, source_job_id: str, target: Path
    ) -> Downloaded | None:
        return await self._get("artifacts", source_job_id, target)

    async def upload_cache(
        self, job_id: str, key: str, source: Path, sha256: str
    ) -> dict[str, Any]:
        self.stored[("caches", key)] = source.read_bytes()
        return {}

    async def download_cache(self, job_id: str, key: str, target: Path) -> Downloaded | None:
        return await self._get("caches", key, target)

    async def _get(self, what: str, key: str, target: Path) -> Downloaded | None:
        self.asked.append((what, key))
        self.started.set()
        if self.hang:
            await asyncio.Event().wait()
        data = self.stored.get((what, key))
        if data is None:
            return None
        target.write_bytes(data)
        sha = hashlib.sha256(data).hexdigest()
        return Downloaded(len(data), sha, sha)


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield loop
    loop.call_soon_threadsafe(loop.stop)
    thread.join()
    loop.close()


def test_server_files_round_trip_and_leave_no_temp_file(
    loop: asyncio.AbstractEventLoop, tmp_path: Path
) -> None:
    api = FakeApi()
    work = tmp_path / "work"
    files = ServerFiles(api, JOB, loop, temp_dir=work)
    ws = tmp_path / "ws"
    (ws / "out").mkdir(parents=True)
    (ws / "out/bin").write_text("binary")
    files.upload(JOB, ws, ["out/bin"], "artifacts")
    files.save("main", ws, ["out/bin"])
    assert files.upload_reports(JOB, "junit", ws, ["out/bin"]) == [
        "JUnit report: 3 tests, 0 failed"
    ]
    other = tmp_path / "other"
    assert files.download(JOB, other) == 1
    assert (other / "out/bin").read_text() == "binary"
    assert files.download("nobody", other) is None
    assert files.restore(["feature", "main", "last"], tmp_path / "third") == "main"
    assert api.asked[-2:] == [("caches", "feature"), ("caches", "main")]
    assert files.restore(["nothing"], tmp_path / "third") is None
    assert list(work.iterdir()) == []


def test_a_cancel_stops_a_transfer_at_once(loop: asyncio.AbstractEventLoop, tmp_path: Path) -> None:
    api = FakeApi()
    api.hang = True
    files = ServerFiles(api, JOB, loop, temp_dir=tmp_path)
    threading.Thread(target=lambda: (api.started.wait(5), files.cancel()), daemon=True).start()
    started = time.monotonic()
    with pytest.raises(TransferCanceled):
        files.download("build", tmp_path / "ws")
    assert time.monotonic() - started < 1.0
    with pytest.raises(TransferCanceled):  # and every later one
        files.restore(["k"], tmp_path / "ws")
    assert list(tmp_path.glob(".transfer-*")) == []
    tasks = asyncio.run_coroutine_threadsafe(_other_tasks(), loop).result(2)
    assert tasks == 0  # the download's task was cancelled, not left hanging


async def _other_tasks() -> int:
    await asyncio.sleep(0.05)
    current = asyncio.current_task()
    return len([t for t in asyncio.all_tasks() if t is not current])


def test_pack_is_what_is_sent(loop: asyncio.AbstractEventLoop, tmp_path: Path) -> None:
    """The archive uploaded is ``ferrous.archive.pack``'s, byte for byte."""
    api = FakeApi()
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "f").write_text("x")
    ServerFiles(api, JOB, loop, temp_dir=tmp_path / "t").save("k", ws, ["f"])
    packed = pack(ws, ["f"], tmp_path / "ref.tar.zst")
    assert hashlib.sha256(api.stored[("caches", "k")]).hexdigest() == packed.sha256


def bomb(tmp_path: Path) -> bytes:
    """1.5 MiB of real data, then 8 MiB of zeros that compress to almost nothing."""
    ws = tmp_path / "bomb-src"
    (ws / "z").mkdir(parents=True)
    (ws / "a.bin").write_bytes(os.urandom(3 << 19))
    with (ws / "z" / "zeros.bin").open("wb") as out:
        out.truncate(8 << 20)
    packed = pack(ws, ["a.bin", "z/zeros.bin"], tmp_path / "bomb.tar.zst")
    assert packed.size < 2 << 20
    return packed.path.read_bytes()


def test_downloads_unpack_under_the_cap(loop: asyncio.AbstractEventLoop, tmp_path: Path) -> None:
    api = FakeApi()
    api.stored[("artifacts", "build")] = api.stored[("caches", "deps")] = bomb(tmp_path)
    cap = 3 << 20
    capped = ServerFiles(api, JOB, loop, temp_dir=tmp_path / "t", max_unpacked_bytes=cap)
    with pytest.raises(UnsafeArchive, match=f"archive expands past {cap} bytes"):
        capped.download("build", tmp_path / "ws")
    with pytest.raises(UnsafeArchive, match=f"archive expands past {cap} bytes"):
        capped.restore(["deps"], tmp_path / "cache-ws")
    # the members before the one that crosses the cap stay, whole; that one is refused on
    # its header, before any of its data (the caller fails the job, or warns for a cache)
    for ws in ("ws", "cache-ws"):
        assert (tmp_path / ws / "a.bin").stat().st_size == 3 << 19
        assert not (tmp_path / ws / "z" / "zeros.bin").exists()
    assert list((tmp_path / "t").iterdir()) == []  # the downloads are removed all the same

    roomy = ServerFiles(api, JOB, loop, temp_dir=tmp_path / "t", max_unpacked_bytes=16 << 20)
    assert roomy.download("build", tmp_path / "ws2") == 2
    uncapped = ServerFiles(api, JOB, loop, temp_dir=tmp_path / "t")  # an older server
    assert uncapped.restore(["deps"], tmp_path / "ws3") == "deps"
    assert (tmp_path / "ws3" / "z" / "zeros.bin").stat().st_size == 8 << 20
