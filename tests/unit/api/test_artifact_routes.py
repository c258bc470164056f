"""Artifacts and caches through the HTTP API: the real app, bus, use cases and archives, on
the in-memory adapters and object store.

The agent's side (upload under the lease, download for a later job, caches by key) and the
people's side (list, members, download, one file), with the problem types of refusals.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest

from ferrous.api.app import create_app
from ferrous.api.services import ApiServices
from ferrous.application.artifacts import Artifacts
from ferrous.application.caches import Caches
from ferrous.application.dependencies import Dependencies
from ferrous.application.messagebus import MessageBus
from ferrous.application.test_reports import record_junit
from ferrous.domain.errors import NotFound
from ferrous.infrastructure.memory import InMemoryQueries, InMemoryStore, memory_uow_factory
from ferrous.infrastructure.memory.artifacts import (
    InMemoryArtifactRepository,
    InMemoryCacheRepository,
)
from ferrous.infrastructure.memory.test_cases import InMemoryTestCaseStore
from ferrous.infrastructure.storage.memory import InMemoryObjectStore
from tests.auth import People, people
from tests.unit.api.conftest import assert_problem
from tests.unit.api.fakes import FakeFeed, FakeWaiter
from tests.unit.api.test_with_memory_adapters import FolderSources, StoreLogs
from tests.unit.application.conftest import FakeClock
from tests.unit.application.test_artifacts import JUNIT_XML, hand_made, make_archive, sha

PIPELINE = """
build:
  stage: build
  script: [make]
  artifacts:
    paths: [out]
    expire_in: 2 days
test:
  stage: test
  script: [make test]
"""
AGENT = "/api/v1/agent/jobs"


@dataclass
class Api:
    client: httpx.AsyncClient
    objects: InMemoryObjectStore
    clock: FakeClock
    auth: dict[str, str]  # the agent's
    job: dict[str, Any]  # `build`, claimed by the agent
    tmp_path: Path

    async def upload(self, data: bytes, kind: str = "archive", **headers: str) -> httpx.Response:
        return await self.client.put(
            f"{AGENT}/{self.job['job_id']}/artifacts/{kind}",
            params={"name": "out-1"},
            content=data,
            headers={"X-Checksum-Sha256": sha(data), **self.auth, **headers},
        )

    async def next_job(self) -> dict[str, Any]:
        done = await self.client.post(
            f"{AGENT}/{self.job['job_id']}/complete",
            json={"attempt": self.job["attempt"], "exit_code": 0},
            headers=self.auth,
        )
        assert done.status_code == 200, done.text
        claimed = await self.client.post("/api/v1/agent/claim", headers=self.auth)
        assert claimed.status_code == 200, claimed.text
        return dict(claimed.json())


@dataclass
class Served:
    services: ApiServices
    objects: InMemoryObjectStore
    clock: FakeClock
    people: People


def serve_files(tmp_path: Path) -> Served:
    """The API on memory adapters with artifacts and caches (64 KiB at most per upload);
    its project's pipeline is PIPELINE, read from ``tmp_path``."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / ".ferrous.yml").write_text(PIPELINE)
    store = InMemoryStore()
    clock = FakeClock()
    bus = MessageBus(
        memory_uow_factory(store), Dependencies(clock=clock, sources=FolderSources(tmp_path))
    )
    objects = InMemoryObjectStore()

    async def agent_by_token_hash(token_hash: str) -> str | None:
        agent = next((a for a in store.agents.values() if a.token_hash == token_hash), None)
        if agent is None:
            raise NotFound()
        return agent.id

    signed = people(store)
    services = ApiServices(
        bus=bus,
        queries=InMemoryQueries(store),
        logs_reader=StoreLogs(store),
        log_events=FakeFeed(),
        claim_waiter=FakeWaiter(),
        agent_by_token_hash=agent_by_token_hash,
        agent_registration_token="reg",
        authenticator=signed.authenticator,
        claim_timeout=0.01,
        artifacts=Artifacts(
            repository=InMemoryArtifactRepository(store),
            objects=objects,
            clock=clock,
            scratch=tmp_path / "scratch",
            max_bytes=64 * 1024,
            default_expire_in="30 days",
            record_junit=partial(record_junit, InMemoryTestCaseStore(store)),
        ),
        caches=Caches(
            repository=InMemoryCacheRepository(store),
            objects=objects,
            clock=clock,
            max_bytes=64 * 1024,
        ),
    )
    return Served(services, objects, clock, signed)


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    served = serve_files(tmp_path)
    transport = httpx.ASGITransport(create_app(served.services))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://test", headers=served.people.headers()
    ) as client:
        await client.post("/api/v1/projects", json={"name": "demo", "repo_url": "/srv/x.git"})
        assert (await client.post("/api/v1/projects/demo/builds", json={})).status_code == 201
        registered = await client.post("/api/v1/agent/register", json={"token": "reg", "name": "a"})
        auth = {"Authorization": f"Bearer {registered.json()['token']}"}
        claimed = await client.post("/api/v1/agent/claim", headers=auth)
        yield Api(client, served.objects, served.clock, auth, claimed.json(), tmp_path)


async def test_an_artifact_up_and_down(api: Api) -> None:
    data = make_archive(api.tmp_path, {"out/app": b"binary", "out/doc/a b.txt": b"hello"})
    stored = await api.upload(data)
    assert stored.status_code == 201, stored.text
    assert stored.json() == {
        "kind": "archive",
        "name": "out-1",
        "size": len(data),
        "sha256": sha(data),
        "files": 2,
        "warnings": [],
        "tests": None,
    }
    job_id, client = api.job["job_id"], api.client

    listed = (await client.get(f"/api/v1/jobs/{job_id}/artifacts")).json()["items"]
    assert [(a["kind"], a["filename"], a["size"], a["files"]) for a in listed] == [
        ("archive", "out-1.tar.zst", len(data), 2)
    ]
    assert listed[0]["expires_at"] == "2025-02-02T12:00:00Z"  # the job's 2 days
    members = (await client.get(f"/api/v1/jobs/{job_id}/artifacts/files")).json()
    assert [m["path"] for m in members["items"] if m["kind"] == "file"] == [
        "out/app",
        "out/doc/a b.txt",
    ]
    assert members["truncated"] is False

    download = await client.get(f"/api/v1/jobs/{job_id}/artifacts/download")
    assert download.content == data
    assert download.headers["x-checksum-sha256"] == sha(data)
    assert download.headers["content-type"] == "application/zstd"
    assert download.headers["content-disposition"].startswith(
        'attachment; filename="out-1.tar.zst"'
    )
    one = await client.get(f"/api/v1/jobs/{job_id}/artifacts/files/out/doc/a b.txt")
    assert (one.status_code, one.content) == (200, b"hello")
    assert one.headers["content-type"] == "application/octet-stream"
    assert one.headers["content-length"] == "5"
    assert_problem(await client.get(f"/api/v1/jobs/{job_id}/artifacts/files/out/nope"), 404)

    later = await api.next_job()
    got = await client.get(
        f"{AGENT}/{later['job_id']}/dependencies/{job_id}/artifacts", headers=api.auth
    )
    assert (got.status_code, got.content, got.headers["x-checksum-sha256"]) == (
        200,
        data,
        sha(data),
    )
    assert_problem(  # the finished job's lease is gone
        await client.get(f"{AGENT}/{job_id}/dependencies/{job_id}/artifacts", headers=api.auth), 409
    )


async def test_refusals_and_their_problem_types(api: Api) -> None:
    data = make_archive(api.tmp_path, {"out/app": b"binary"})
    mismatch = await api.upload(data, **{"X-Checksum-Sha256": "0" * 64})
    assert assert_problem(mismatch, 422)["type"] == "urn:ferrous:problem:checksum-mismatch"
    unsafe = await api.upload(hand_made([("../../etc/cron.d/x", b"boom")]))
    assert assert_problem(unsafe, 422)["type"] == "urn:ferrous:problem:unsafe-archive"
    corrupt = await api.upload(b"not an archive")
    assert assert_problem(corrupt, 422)["type"] == "urn:ferrous:problem:corrupt-archive"
    big = await api.upload(b"x" * (64 * 1024 + 1))
    assert assert_problem(big, 413)["type"] == "urn:ferrous:problem:payload-too-large"

    async def undeclared() -> AsyncIterator[bytes]:  # chunked: no Content-Length to refuse
        for _ in range(100):
            yield b"y" * 1024

    streamed = await api.client.put(
        f"{AGENT}/{api.job['job_id']}/artifacts/archive",
        content=undeclared(),
        headers={"X-Checksum-Sha256": "1" * 64, **api.auth},
    )
    assert_problem(streamed, 413)
    missing = await api.client.put(
        f"{AGENT}/{api.job['job_id']}/artifacts/archive", content=data, headers=api.auth
    )
    assert_problem(missing, 422)
    wrong_kind = await api.upload(data, kind="coverage")
    assert_problem(wrong_kind, 422)
    person = await api.client.put(
        f"{AGENT}/{api.job['job_id']}/artifacts/archive",
        content=data,
        headers={"X-Checksum-Sha256": sha(data)},
    )
    assert_problem(person, 401)  # a person's token names no agent
    assert api.objects.objects == {}

    assert_problem(await api.client.get(f"/api/v1/jobs/{api.job['job_id']}/artifacts/files"), 404)
    assert_problem(await api.client.get("/api/v1/jobs/nope/artifacts"), 404)


async def test_expired_and_corrupt_artifacts(api: Api) -> None:
    await api.upload(make_archive(api.tmp_path, {"out/app": b"binary"}))
    job_id = api.job["job_id"]
    [key] = api.objects.objects
    api.objects.objects[key] = api.objects.objects[key][:-1] + b"\0"

    one = await api.client.get(f"/api/v1/jobs/{job_id}/artifacts/files/out/app")
    body = assert_problem(one, 500)
    assert body["type"] == "urn:ferrous:problem:corrupt-object"
    assert "corrupt" in body["detail"]

    api.clock.advance(days=2)
    assert (await api.client.get(f"/api/v1/jobs/{job_id}/artifacts")).json() == {"items": []}
    assert_problem(await api.client.get(f"/api/v1/jobs/{job_id}/artifacts/download"), 404)


async def test_a_junit_upload_reports_its_tests(api: Api) -> None:
    data = make_archive(api.tmp_path, {"junit.xml": JUNIT_XML, "bad.xml": b"<oops"})
    stored = await api.upload(data, kind="junit")
    assert stored.status_code == 201, stored.text
    answer = stored.json()
    assert (answer["kind"], answer["tests"]) == ("junit", {"total": 2, "failed": 1})
    assert any("bad.xml" in w for w in answer["warnings"])
    junit = await api.client.get(
        f"/api/v1/jobs/{api.job['job_id']}/artifacts/download", params={"kind": "junit"}
    )
    assert junit.content == data


async def test_caches_by_key(api: Api) -> None:
    job_id, client = api.job["job_id"], api.client
    url = f"{AGENT}/{job_id}/caches/" + "deps%2Fv1%20linux"
    assert_problem(await client.get(url, headers=api.auth), 404)
    data = make_archive(api.tmp_path, {"node_modules/x": b"1"})

    saved = await client.put(
        url, content=data, headers={"X-Checksum-Sha256": sha(data), **api.auth}
    )
    assert saved.status_code == 201, saved.text
    assert saved.json() == {"key": "deps/v1 linux", "size": len(data), "sha256": sha(data)}
    restored = await client.get(url, headers=api.auth)
    assert (restored.status_code, restored.content) == (200, data)
    assert restored.headers["x-checksum-sha256"] == sha(data)
    assert_problem(await client.get(f"{AGENT}/{job_id}/caches/{'k' * 256}", headers=api.auth), 422)
    bad = await client.put(url, content=data, headers={"X-Checksum-Sha256": sha(b""), **api.auth})
    assert assert_problem(bad, 422)["type"] == "urn:ferrous:problem:checksum-mismatch"


async def test_the_openapi_document_describes_the_binary_bodies(api: Api) -> None:
    paths = (await api.client.get("/api/openapi.json")).json()["paths"]
    upload = paths["/api/v1/agent/jobs/{job_id}/artifacts/{kind}"]["put"]
    assert upload["requestBody"]["content"]["application/zstd"]["schema"]["format"] == "binary"
    download = paths["/api/v1/jobs/{job_id}/artifacts/download"]["get"]["responses"]["200"]
    assert "application/zstd" in download["content"]
    assert "X-Checksum-Sha256" in download["headers"]


async def test_a_projects_default_expiry(api: Api) -> None:
    client = api.client
    refused = await client.patch("/api/v1/projects/demo", json={"artifacts_expire_in": "soon"})
    assert "soon" in assert_problem(refused, 422)["detail"]
    changed = await client.patch("/api/v1/projects/demo", json={"artifacts_expire_in": "1 week"})
    assert changed.json()["artifacts_expire_in"] == "1 week"

    later = await api.next_job()  # `test` gives no expire_in: the project's applies
    data = make_archive(api.tmp_path, {"report": b"ok"})
    stored = await client.put(
        f"{AGENT}/{later['job_id']}/artifacts/archive",
        content=data,
        headers={"X-Checksum-Sha256": sha(data), **api.auth},
    )
    assert stored.status_code == 201, stored.text
    listed = (await client.get(f"/api/v1/jobs/{later['job_id']}/artifacts")).json()["items"]
    assert listed[0]["expires_at"] == "2025-02-07T12:00:00Z"

    removed = await client.patch("/api/v1/projects/demo", json={"artifacts_expire_in": ""})
    assert removed.json()["artifacts_expire_in"] is None
    created = await client.post(
        "/api/v1/projects",
        json={"name": "kept", "repo_url": "/srv/k.git", "artifacts_expire_in": "never"},
    )
    assert created.json()["artifacts_expire_in"] == "never"


async def test_the_latest_successful_builds_artifacts_outlive_their_expiry(api: Api) -> None:
    client, job_id = api.client, api.job["job_id"]
    data = make_archive(api.tmp_path, {"out/app": b"binary"})
    assert (await api.upload(data)).status_code == 201
    later = await api.next_job()
    await complete(api, later)  # build #1 succeeded: its artifacts are main's latest
    api.clock.advance(days=3)  # past the job's 2 days

    [listed] = (await client.get(f"/api/v1/jobs/{job_id}/artifacts")).json()["items"]
    assert (listed["expires_at"], listed["locked"]) == ("2025-02-02T12:00:00Z", True)
    download = await client.get(f"/api/v1/jobs/{job_id}/artifacts/download")
    assert (download.status_code, download.content) == (200, data)
    one = await client.get(f"/api/v1/jobs/{job_id}/artifacts/files/out/app")
    assert (one.status_code, one.content) == (200, b"binary")

    off = await client.patch("/api/v1/projects/demo", json={"keep_latest_artifacts": False})
    assert off.json()["keep_latest_artifacts"] is False
    assert (await client.get(f"/api/v1/jobs/{job_id}/artifacts")).json() == {"items": []}
    assert_problem(await client.get(f"/api/v1/jobs/{job_id}/artifacts/download"), 404)
    on = await client.patch("/api/v1/projects/demo", json={"keep_latest_artifacts": True})
    assert on.json()["keep_latest_artifacts"] is True
    assert (await client.get(f"/api/v1/jobs/{job_id}/artifacts/download")).status_code == 200

    assert (await client.post("/api/v1/projects/demo/builds", json={})).status_code == 201
    for _ in range(2):  # build #2 of main succeeds: #1's expired artifacts are released
        claimed = await client.post("/api/v1/agent/claim", headers=api.auth)
        await complete(api, claimed.json())
    assert (await client.get(f"/api/v1/jobs/{job_id}/artifacts")).json() == {"items": []}
    assert_problem(await client.get(f"/api/v1/jobs/{job_id}/artifacts/download"), 404)


async def complete(api: Api, job: dict[str, Any]) -> None:
    done = await api.client.post(
        f"{AGENT}/{job['job_id']}/complete",
        json={"attempt": job["attempt"], "exit_code": 0},
        headers=api.auth,
    )
    assert done.status_code == 200, done.text


async def test_a_retry_of_the_latest_success_still_gets_its_dependencies(api: Api) -> None:
    """A job of main's latest success retried after the artifacts expired: the build runs
    again, and the retried job downloads them; its failure does not release them."""
    client, job_id = api.client, api.job["job_id"]
    data = make_archive(api.tmp_path, {"out/app": b"binary"})
    assert (await api.upload(data)).status_code == 201
    later = await api.next_job()
    await complete(api, later)
    api.clock.advance(days=3)  # past the job's 2 days

    retried = await client.post(f"/api/v1/jobs/{later['job_id']}/retry")
    assert retried.status_code == 200, retried.text
    again = (await client.post("/api/v1/agent/claim", headers=api.auth)).json()
    assert (again["job_id"], again["attempt"]) == (later["job_id"], 2)
    assert [d["job_id"] for d in again["dependencies"]] == [job_id]
    inputs = await client.get(
        f"{AGENT}/{again['job_id']}/dependencies/{job_id}/artifacts", headers=api.auth
    )
    assert (inputs.status_code, inputs.content) == (200, data)

    failed = await client.post(
        f"{AGENT}/{again['job_id']}/complete",
        json={"attempt": 2, "exit_code": 1},
        headers=api.auth,
    )
    assert failed.status_code == 200, failed.text
    build = (await client.get(f"/api/v1/builds/{again['build_id']}")).json()
    assert build["status"] == "failed"
    [listed] = (await client.get(f"/api/v1/jobs/{job_id}/artifacts")).json()["items"]
    assert listed["locked"] is True
    download = await client.get(f"/api/v1/jobs/{job_id}/artifacts/download")
    assert (download.status_code, download.content) == (200, data)
