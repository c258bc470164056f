"""One build end to end through the API, on the real bus, use cases and in-memory adapters.

The other API tests use small fakes; this one proves the API and the application agree:
command arguments, result types, error types and the DTOs' shapes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

from ferrous.api.app import create_app
from ferrous.api.services import ApiServices
from ferrous.application.dependencies import Dependencies, SystemClock
from ferrous.application.messagebus import MessageBus
from ferrous.application.source_ports import ResolvedRef
from ferrous.domain.errors import NotFound
from ferrous.infrastructure.memory import InMemoryQueries, InMemoryStore, memory_uow_factory
from tests.auth import people
from tests.unit.api.conftest import assert_problem
from tests.unit.api.fakes import FakeFeed, FakeWaiter

PIPELINE = """
build:
  stage: build
  script: [make]
test:
  stage: test
  script: [make test]
"""


class FolderSources:
    """A "repository" that is one folder at one commit."""

    def __init__(self, tree: Path) -> None:
        self.tree = tree

    async def resolve(self, repo_url: str, ref: str, credentials: object = None) -> ResolvedRef:
        return ResolvedRef(sha="c" * 40, branch=ref, tag=None)

    async def checkout(self, repo_url: str, sha: str, credentials: object = None) -> Path:
        return self.tree

    async def commit_info(
        self, repo_url: str, sha: str, credentials: object = None
    ) -> dict[str, str]:
        return {"message": "initial", "author": "dev", "timestamp": "2025-01-31T12:00:00Z"}

    async def changed_files(
        self,
        repo_url: str,
        before: str,
        after: str,
        credentials: object = None,
        *,
        since_merge_base: bool = False,
    ) -> Sequence[str]:
        return []


class StoreLogs:
    def __init__(self, store: InMemoryStore) -> None:
        self.store = store

    async def read(self, job_id: str, start: int = 0, end: int | None = None) -> bytes:
        return self.store.logs.get(job_id, b"")[start:end]

    async def size(self, job_id: str) -> int:
        return len(self.store.logs.get(job_id, b""))


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    (tmp_path / ".ferrous.yml").write_text(PIPELINE)
    store = InMemoryStore()
    bus = MessageBus(
        memory_uow_factory(store),
        Dependencies(clock=SystemClock(), sources=FolderSources(tmp_path)),
    )

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
    )
    transport = httpx.ASGITransport(create_app(services))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://test", headers=signed.headers()
    ) as client:
        yield client


async def run_job(client: httpx.AsyncClient, auth: dict[str, str], text: bytes) -> dict[str, Any]:
    claimed = await client.post("/api/v1/agent/claim", headers=auth)
    assert claimed.status_code == 200, claimed.text
    job = dict(claimed.json())
    url = f"/api/v1/agent/jobs/{job['job_id']}"
    for _ in range(2):  # the second is a resend: accepted once
        logged = await client.post(f"{url}/log", params={"offset": 0}, content=text, headers=auth)
        assert logged.json() == {"size": len(text)}
    beat = await client.post(
        "/api/v1/agent/heartbeat", json={"running": [job["job_id"]]}, headers=auth
    )
    assert beat.json() == {"cancel": []}
    done = await client.post(
        f"{url}/complete", json={"attempt": job["attempt"], "exit_code": 0}, headers=auth
    )
    assert done.json() == {"job_id": job["job_id"], "status": "success"}
    return job


async def test_a_build_through_the_api(client: httpx.AsyncClient) -> None:
    project = (
        await client.post("/api/v1/projects", json={"name": "demo", "repo_url": "/srv/demo.git"})
    ).json()
    created = await client.post("/api/v1/projects/demo/builds", json={"variables": {"X": "1"}})
    assert created.status_code == 201, created.text
    build = created.json()
    assert build["pipeline_id"] == project["default_pipeline_id"]
    assert build["stages"] == ["build", "test"]
    assert [j["name"] for j in build["jobs"]] == ["build", "test"]
    assert build["variables"] == ["X"]

    registered = await client.post("/api/v1/agent/register", json={"token": "reg", "name": "a1"})
    auth = {"Authorization": f"Bearer {registered.json()['token']}"}
    first = await run_job(client, auth, b"compiling\n")
    second = await run_job(client, auth, b"testing\n")
    nothing = await client.post("/api/v1/agent/claim", headers=auth)

    assert (first["name"], second["name"], nothing.status_code) == ("build", "test", 204)
    finished = (await client.get(f"/api/v1/builds/{build['id']}")).json()
    assert finished["status"] == "success"
    assert [j["status"] for j in finished["jobs"]] == ["success", "success"]
    job = (await client.get(f"/api/v1/jobs/{first['job_id']}")).json()
    assert job["attempts"][0]["exit_code"] == 0
    log = await client.get(f"/api/v1/jobs/{first['job_id']}/log", headers={"Range": "bytes=0-8"})
    assert (log.status_code, log.content, log.headers["x-job-status"]) == (
        206,
        b"compiling",
        "success",
    )
    listing = (await client.get("/api/v1/builds", params={"project": "demo", "limit": 1})).json()
    assert [b["id"] for b in listing["items"]] == [build["id"]]
    agents = (await client.get("/api/v1/agents")).json()["items"]
    assert [a["name"] for a in agents] == ["a1"]


async def test_errors_of_the_use_cases(client: httpx.AsyncClient) -> None:
    await client.post("/api/v1/projects", json={"name": "demo", "repo_url": "/srv/demo.git"})
    build = (await client.post("/api/v1/projects/demo/builds", json={})).json()

    duplicate = await client.post("/api/v1/projects", json={"name": "demo", "repo_url": "x"})
    canceled = await client.post(f"/api/v1/builds/{build['id']}/cancel")
    play = await client.post(f"/api/v1/jobs/{build['jobs'][0]['id']}/play")
    registered = await client.post("/api/v1/agent/register", json={"token": "reg", "name": "a1"})
    auth = {"Authorization": f"Bearer {registered.json()['token']}"}
    late = await client.post(
        f"/api/v1/agent/jobs/{build['jobs'][0]['id']}/complete",
        json={"attempt": 1, "exit_code": 0},
        headers=auth,
    )

    assert_problem(duplicate, 409)
    assert canceled.json()["status"] == "canceled"
    assert_problem(play, 409)
    assert_problem(late, 409)
    assert_problem(await client.get("/api/v1/builds", params={"cursor": "???"}), 404)
