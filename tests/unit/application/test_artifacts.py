"""Artifacts and caches on the real bus, leases, archives and object stores (memory, local).

A job is claimed through the bus so the lease checks see real state; uploads are real
``.tar.zst`` archives (``ferrous.archive.pack``, or hand-made with tarfile for the unsafe
ones) streamed in small chunks.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import tarfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import zstandard

from ferrous.application import artifacts as artifacts_module
from ferrous.application.artifact_ports import ARCHIVE, JUNIT
from ferrous.application.artifact_reads import archive_members, artifact_file, list_artifacts
from ferrous.application.artifacts import Artifacts, Download
from ferrous.application.caches import Caches
from ferrous.application.expiry import expires_at, parse_expire_in
from ferrous.application.storage_ports import ObjectStore
from ferrous.application.test_reports import record_junit
from ferrous.archive import pack
from ferrous.domain.errors import (
    ChecksumMismatch,
    Conflict,
    CorruptArchive,
    CorruptObject,
    InvalidValue,
    NotFound,
    TooLarge,
    UnsafeArchive,
)
from ferrous.infrastructure.memory.artifacts import (
    InMemoryArtifactRepository,
    InMemoryCacheRepository,
)
from ferrous.infrastructure.memory.test_cases import InMemoryTestCaseStore
from ferrous.infrastructure.storage.local import LocalObjectStore
from ferrous.infrastructure.storage.memory import InMemoryObjectStore
from tests.unit.application.conftest import FakeClock, World

PIPELINE = """
stages: [build, test]
compile:
  stage: build
  script: [make]
  artifacts:
    paths: [out]
    expire_in: 1 week
unit:
  stage: test
  script: [make test]
"""
JUNIT_XML = b"""<testsuite name="s"><testcase classname="c" name="ok"/>
<testcase classname="c" name="bad"><failure message="no">boom</failure></testcase></testsuite>"""


def make_archive(tmp_path: Path, files: dict[str, bytes], name: str = "a") -> bytes:
    root = tmp_path / f"src-{name}"
    for path, data in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data)
    target = tmp_path / f"{name}.tar.zst"
    pack(root, sorted(files), target)
    return target.read_bytes()


def hand_made(members: list[tuple[str, bytes]]) -> bytes:
    """A tar.zst with members written as given (no safety checks on the way)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return zstandard.ZstdCompressor().compress(raw.getvalue())


async def chunked(data: bytes, size: int = 1000) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def body(download: Download) -> bytes:
    return b"".join([chunk async for chunk in download.chunks])


@dataclass
class Setup:
    world: World
    artifacts: Artifacts
    caches: Caches
    objects: InMemoryObjectStore
    repository: InMemoryArtifactRepository
    agent: str
    job: dict[str, Any]  # the claimed `compile`

    async def upload(self, data: bytes, kind: str = ARCHIVE, **changes: Any) -> Any:
        fields: dict[str, Any] = {
            "agent_id": self.agent,
            "job_id": self.job["job_id"],
            "kind": kind,
            "name": "out",
            "chunks": chunked(data),
            "sha256": sha(data),
            **changes,
        }
        return await self.artifacts.upload(**fields)


@pytest.fixture
async def setup(world: World, clock: FakeClock, tmp_path: Path) -> Setup:
    pipeline_id = await world.project(PIPELINE)
    await world.trigger(pipeline_id)
    agent = await world.agent()
    job = await world.claim(agent)
    assert job is not None
    assert job["name"] == "compile"
    objects = InMemoryObjectStore()
    repository = InMemoryArtifactRepository(world.store)
    artifacts = Artifacts(
        repository=repository,
        objects=objects,
        clock=clock,
        scratch=tmp_path / "scratch",
        max_bytes=10 * 1024 * 1024,
        default_expire_in="30 days",
        record_junit=partial(record_junit, InMemoryTestCaseStore(world.store)),
    )
    caches = Caches(
        repository=InMemoryCacheRepository(world.store),
        objects=objects,
        clock=clock,
        max_bytes=10 * 1024 * 1024,
    )
    return Setup(world, artifacts, caches, objects, repository, agent, job)


def test_expire_in_reads_gitlab_durations() -> None:
    assert parse_expire_in("1 week") == timedelta(weeks=1)
    assert parse_expire_in("3 days 4 hrs") == timedelta(days=3, hours=4)
    assert parse_expire_in("30 mins") == timedelta(minutes=30)
    assert parse_expire_in("1 yr") == timedelta(days=365)
    assert parse_expire_in("42") == timedelta(seconds=42)
    assert parse_expire_in(" Never ") is None
    assert parse_expire_in("1000 years") == timedelta(days=365_000)
    for bad in ("soon", "1001 years", "9" * 400):  # the last would overflow a float
        with pytest.raises(InvalidValue):
            parse_expire_in(bad)


def test_expiry_falls_back_past_bad_values(clock: FakeClock) -> None:
    now = clock.now()
    assert expires_at(now, None, "2 days", "30 days") == now + timedelta(days=2)
    assert expires_at(now, "whenever", None, "1 hr") == now + timedelta(hours=1)
    assert expires_at(now, "never", "2 days", "30 days") is None
    assert expires_at(now, None, None, "bogus") == now + timedelta(days=30)


async def test_an_upload_is_checked_listed_and_replaced(setup: Setup, tmp_path: Path) -> None:
    first = make_archive(tmp_path, {"out/app": b"v1", "out/doc/readme": b"hello"}, "one")
    uploaded = await setup.upload(first)

    stored = uploaded.artifact
    assert (stored.kind, stored.name, stored.size, stored.sha256) == (
        "archive",
        "out",
        len(first),
        sha(first),
    )
    assert stored.files == 2
    assert stored.expires_at == setup.world.clock.now() + timedelta(weeks=1)  # the job's
    assert stored.object_key.startswith(
        f"artifacts/{stored.project_id}/{stored.build_id}/{stored.job_id}/archive-"
    )
    assert setup.objects.objects == {stored.object_key: first}
    members, truncated = await archive_members(setup.artifacts, setup.job["job_id"])
    assert [(m.path, m.size, m.kind) for m in members if m.kind == "file"] == [
        ("out/app", 2, "file"),
        ("out/doc/readme", 5, "file"),
    ]
    assert truncated is False

    second = make_archive(tmp_path, {"out/app": b"v2"}, "two")
    replaced = (await setup.upload(second)).artifact
    assert setup.objects.objects == {replaced.object_key: second}  # the old object is gone
    listed = await list_artifacts(setup.artifacts, setup.job["job_id"])
    assert [a.id for a in listed] == [replaced.id]
    download = await setup.artifacts.download(setup.job["job_id"], ARCHIVE)
    assert (await body(download), download.sha256, download.filename) == (
        second,
        sha(second),
        "out.tar.zst",
    )


async def test_refused_uploads_store_nothing(setup: Setup, tmp_path: Path) -> None:
    good = make_archive(tmp_path, {"out/app": b"v1"})
    with pytest.raises(ChecksumMismatch):
        await setup.upload(good, sha256="0" * 64)
    with pytest.raises(UnsafeArchive, match=r"\.\./evil"):
        await setup.upload(hand_made([("out/ok", b"1"), ("../evil", b"2")]))
    with pytest.raises(CorruptArchive):
        await setup.upload(os.urandom(5000))
    with pytest.raises(CorruptArchive):
        await setup.upload(good[: len(good) // 2])
    setup.artifacts.max_bytes = 100
    with pytest.raises(TooLarge):
        await setup.upload(make_archive(tmp_path, {"big": os.urandom(5000)}, "big"))
    with pytest.raises(InvalidValue):
        await setup.upload(good, kind="coverage")

    assert setup.objects.objects == {}
    assert setup.repository.rows == {}


async def test_only_the_lease_holder_uploads(setup: Setup, tmp_path: Path) -> None:
    data = make_archive(tmp_path, {"out/app": b"v1"})
    other = await setup.world.agent("other")
    with pytest.raises(Conflict):
        await setup.upload(data, agent_id=other)
    await setup.world.finish(setup.agent, setup.job)
    with pytest.raises(Conflict):
        await setup.upload(data)  # the job is no longer running
    assert setup.objects.objects == {}


async def test_the_lease_lost_during_the_upload_leaves_nothing(
    setup: Setup, tmp_path: Path
) -> None:
    data = make_archive(tmp_path, {"out/app": os.urandom(50_000)})

    async def finishing_midway() -> AsyncIterator[bytes]:
        async for chunk in chunked(data):
            yield chunk
        await setup.world.finish(setup.agent, setup.job)  # before the row is written

    with pytest.raises(Conflict):
        await setup.upload(data, chunks=finishing_midway())
    assert setup.objects.objects == {}


async def test_listings_are_capped(
    setup: Setup, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(artifacts_module, "MAX_ENTRIES", 3)
    files = {f"out/f{i:02}": b"x" for i in range(10)}
    stored = (await setup.upload(make_archive(tmp_path, files))).artifact
    assert (stored.files, stored.entries_truncated) == (10, True)
    members, truncated = await archive_members(setup.artifacts, setup.job["job_id"])
    assert (len(members), truncated) == (3, True)


async def test_junit_reports_become_test_cases(setup: Setup, tmp_path: Path) -> None:
    data = make_archive(tmp_path, {"reports/a.xml": JUNIT_XML, "reports/broken.xml": b"<testsuite"})
    uploaded = await setup.upload(data, kind=JUNIT)

    assert uploaded.tests is not None
    assert (uploaded.tests.total, uploaded.tests.failed) == (2, 1)
    assert any("broken.xml" in warning for warning in uploaded.warnings)
    assert uploaded.artifact.kind == JUNIT
    assert not any((tmp_path / "scratch").iterdir())  # the unpacked reports are gone


async def test_big_junit_files_are_skipped(
    setup: Setup, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(artifacts_module, "MAX_REPORT_BYTES", 200)
    data = make_archive(tmp_path, {"a.xml": JUNIT_XML, "huge.xml": b" " * 300})
    uploaded = await setup.upload(data, kind=JUNIT)
    assert uploaded.tests is not None
    assert uploaded.tests.total == 2
    assert [w for w in uploaded.warnings if "huge.xml" in w] == [
        "huge.xml: skipped, larger than 200 bytes"
    ]


async def test_later_jobs_of_the_build_download_artifacts(setup: Setup, tmp_path: Path) -> None:
    data = make_archive(tmp_path, {"out/app": b"v1"})
    await setup.upload(data)
    await setup.world.finish(setup.agent, setup.job)
    unit = await setup.world.claim(setup.agent)
    assert unit is not None
    assert unit["name"] == "unit"

    download = await setup.artifacts.for_agent(
        agent_id=setup.agent, job_id=unit["job_id"], source_job_id=setup.job["job_id"]
    )
    assert (await body(download), download.size, download.sha256) == (data, len(data), sha(data))

    other = await setup.world.agent("other")
    with pytest.raises(Conflict):
        await setup.artifacts.for_agent(
            agent_id=other, job_id=unit["job_id"], source_job_id=setup.job["job_id"]
        )
    with pytest.raises(NotFound):  # it has none
        await setup.artifacts.for_agent(
            agent_id=setup.agent, job_id=unit["job_id"], source_job_id=unit["job_id"]
        )
    setup.world.clock.advance(weeks=1)
    with pytest.raises(NotFound):  # expired, not yet cleaned up
        await setup.artifacts.for_agent(
            agent_id=setup.agent, job_id=unit["job_id"], source_job_id=setup.job["job_id"]
        )
    assert await list_artifacts(setup.artifacts, setup.job["job_id"]) == []


async def test_another_builds_artifacts_are_out_of_reach(setup: Setup, tmp_path: Path) -> None:
    await setup.upload(make_archive(tmp_path, {"out/app": b"v1"}))
    await setup.world.finish(setup.agent, setup.job)
    [pipeline_id] = [p.id for p in setup.world.store.pipelines.values()]
    await setup.world.trigger(pipeline_id)
    while (claimed := await setup.world.claim(setup.agent)) is not None:
        if claimed["build_id"] != setup.job["build_id"]:
            break
        await setup.world.finish(setup.agent, claimed)
    assert claimed is not None
    with pytest.raises(NotFound, match="not in the build"):
        await setup.artifacts.for_agent(
            agent_id=setup.agent, job_id=claimed["job_id"], source_job_id=setup.job["job_id"]
        )


async def test_one_file_out_of_the_archive(setup: Setup, tmp_path: Path) -> None:
    await setup.upload(make_archive(tmp_path, {"out/doc/readme": b"hello", "out/app": b"x"}))
    job_id = setup.job["job_id"]

    found = await artifact_file(setup.artifacts, job_id, "./out/doc/readme")
    assert (await body(found), found.size, found.filename) == (b"hello", 5, "readme")
    with pytest.raises(NotFound):
        await artifact_file(setup.artifacts, job_id, "out/missing")
    with pytest.raises(InvalidValue):
        await artifact_file(setup.artifacts, job_id, "../etc/passwd")
    with pytest.raises(NotFound):
        await artifact_file(setup.artifacts, job_id + "x", "out/app")

    [key] = setup.objects.objects
    stored = setup.objects.objects[key]
    setup.objects.objects[key] = stored[:-1] + bytes([stored[-1] ^ 1])
    with pytest.raises(CorruptObject, match="corrupt"):
        await artifact_file(setup.artifacts, job_id, "out/app")
    assert list((tmp_path / "scratch").iterdir()) == []


async def test_caches_by_key_and_scope(setup: Setup, tmp_path: Path) -> None:
    caches, job_id, agent = setup.caches, setup.job["job_id"], setup.agent
    build = setup.world.store.builds[setup.job["build_id"]]
    assert build.protected_ref  # the default branch's
    build.protected_ref = False  # as a feature branch's build
    first = make_archive(tmp_path, {"deps/a": b"1"}, "one")
    with pytest.raises(NotFound):
        await caches.restore(agent_id=agent, job_id=job_id, key="deps/v1")

    saved = await caches.save(
        agent_id=agent, job_id=job_id, key="deps/v1", chunks=chunked(first), sha256=sha(first)
    )
    assert saved.scope == "unprotected"
    assert saved.object_key.startswith(f"caches/{saved.project_id}/unprotected/{sha(b'deps/v1')}-")
    restored = await caches.restore(agent_id=agent, job_id=job_id, key="deps/v1")
    assert await body(restored) == first

    second = make_archive(tmp_path, {"deps/a": b"2"}, "two")
    await caches.save(
        agent_id=agent, job_id=job_id, key="deps/v1", chunks=chunked(second), sha256=sha(second)
    )
    assert list(setup.objects.objects.values()) == [second]

    build.protected_ref = True  # the protected scope sees nothing of the unprotected one
    with pytest.raises(NotFound, match="protected cache"):
        await caches.restore(agent_id=agent, job_id=job_id, key="deps/v1")
    with pytest.raises(InvalidValue):
        await caches.restore(agent_id=agent, job_id=job_id, key="x" * 256)


async def test_a_restore_stamps_its_use_once_a_minute(setup: Setup, tmp_path: Path) -> None:
    caches, job_id, agent = setup.caches, setup.job["job_id"], setup.agent
    data = make_archive(tmp_path, {"deps/a": b"1"})
    saved = await caches.save(
        agent_id=agent, job_id=job_id, key="k", chunks=chunked(data), sha256=sha(data)
    )
    rows = setup.caches.repository.rows  # type: ignore[attr-defined]
    where = (saved.project_id, saved.scope, "k")
    setup.world.clock.advance(seconds=30)
    await caches.restore(agent_id=agent, job_id=job_id, key="k")
    assert rows[where].last_used_at == saved.last_used_at
    later = setup.world.clock.advance(seconds=31)
    await caches.restore(agent_id=agent, job_id=job_id, key="k")
    assert rows[where].last_used_at == later


async def test_many_uploads_at_once_on_a_local_store(setup: Setup, tmp_path: Path) -> None:
    """More uploads than the default executor has threads: the scanners have their own,
    so the local store's writes (through that executor) always get one."""
    objects: ObjectStore = LocalObjectStore(tmp_path / "objects")
    setup.caches.objects = objects
    data = make_archive(tmp_path, {"deps/blob": os.urandom(3 * 1024 * 1024)})

    async def save(n: int) -> None:
        await setup.caches.save(
            agent_id=setup.agent,
            job_id=setup.job["job_id"],
            key=f"k{n}",
            chunks=chunked(data, 64 * 1024),
            sha256=sha(data),
        )

    await asyncio.wait_for(asyncio.gather(*(save(n) for n in range(40))), timeout=60)
    assert len([key async for key in objects.keys("caches/")]) == 40


def peak_rss() -> int:
    """The process's peak resident memory so far (VmHWM), in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc/self/status")


async def test_a_big_upload_streams_in_little_memory(setup: Setup, tmp_path: Path) -> None:
    """150 MB through the scan into a local store: memory grows by a few MiB at most."""
    root = tmp_path / "big"
    root.mkdir()
    with (root / "blob").open("wb") as out:
        for _ in range(150):
            out.write(os.urandom(1024 * 1024))
    packed = pack(root, ["blob"], tmp_path / "big.tar.zst")
    (root / "blob").unlink()
    setup.artifacts.objects = LocalObjectStore(tmp_path / "objects")
    setup.artifacts.max_bytes = 1 << 30

    async def from_file() -> AsyncIterator[bytes]:
        with packed.path.open("rb") as source:
            while chunk := source.read(64 * 1024):
                yield chunk

    before = peak_rss()
    uploaded = await setup.upload(b"", chunks=from_file(), sha256=packed.sha256)
    assert uploaded.artifact.size == packed.size
    assert peak_rss() - before < 60 * 1024 * 1024
