"""A project's forge fields through the API, on the real bus and in-memory adapters: set on
create, changed by PATCH, shown as used, the token never echoed."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from ferrous.api.app import create_app
from ferrous.api.services import ApiServices
from ferrous.application.dependencies import Dependencies, SystemClock
from ferrous.application.messagebus import MessageBus
from ferrous.infrastructure.memory import (
    InMemoryQueries,
    InMemoryStore,
    PlaintextSecretBox,
    memory_uow_factory,
)
from tests.auth import people
from tests.unit.api.conftest import assert_problem
from tests.unit.api.fakes import FakeFeed, FakeWaiter
from tests.unit.api.test_with_memory_adapters import FolderSources, StoreLogs

TOKEN = "glpat-s3cr3t-t0ken"
GITLAB_REPO = "https://gitlab.example.com/ci/app.git"


@pytest.fixture
def store() -> InMemoryStore:
    return InMemoryStore()


async def no_agent(token_hash: str) -> str | None:
    return None


@pytest.fixture
async def client(tmp_path: Path, store: InMemoryStore) -> AsyncIterator[httpx.AsyncClient]:
    deps = Dependencies(
        clock=SystemClock(), sources=FolderSources(tmp_path), secret_box=PlaintextSecretBox()
    )
    signed = people(store)
    services = ApiServices(
        bus=MessageBus(memory_uow_factory(store), deps),
        queries=InMemoryQueries(store),
        logs_reader=StoreLogs(store),
        log_events=FakeFeed(),
        claim_waiter=FakeWaiter(),
        agent_by_token_hash=no_agent,
        agent_registration_token="reg",
        authenticator=signed.authenticator,
        claim_timeout=0.01,
    )
    transport = httpx.ASGITransport(create_app(services))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://test", headers=signed.headers()
    ) as client:
        yield client


def forge_fields(body: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in body.items() if k.startswith("forge")}


async def test_a_project_is_created_with_a_forge_and_the_token_is_never_shown(
    client: httpx.AsyncClient, store: InMemoryStore
) -> None:
    created = await client.post(
        "/api/v1/projects",
        json={"name": "app", "repo_url": GITLAB_REPO, "forge": "gitlab", "forge_token": TOKEN},
    )
    listing = await client.get("/api/v1/projects")
    detail = await client.get("/api/v1/projects/app")

    assert created.status_code == 201, created.text
    assert forge_fields(created.json()) == {
        "forge": "gitlab",
        "forge_api_url": "https://gitlab.example.com/api/v4",
        "forge_repo": "ci/app",
        "forge_token_set": True,
    }
    for response in (created, listing, detail):
        assert TOKEN not in response.text
    [project] = store.projects.values()
    assert project.forge is not None
    assert TOKEN not in project.forge.token


async def test_patch_changes_the_forge_field_by_field(client: httpx.AsyncClient) -> None:
    await client.post("/api/v1/projects", json={"name": "app", "repo_url": "/srv/git/app"})

    github = await client.patch(
        "/api/v1/projects/app",
        json={"forge": "github", "forge_repo": "o/r", "forge_token": TOKEN},
    )
    moved = await client.patch(
        "/api/v1/projects/app", json={"forge_api_url": "http://127.0.0.1:8080/"}
    )
    removed = await client.patch("/api/v1/projects/app", json={"forge": "none"})

    assert forge_fields(github.json()) == {
        "forge": "github",
        "forge_api_url": "https://api.github.com",
        "forge_repo": "o/r",
        "forge_token_set": True,
    }
    assert forge_fields(moved.json())["forge_api_url"] == "http://127.0.0.1:8080"
    assert forge_fields(moved.json())["forge_token_set"] is True
    assert forge_fields(removed.json()) == {
        "forge": "none",
        "forge_api_url": None,
        "forge_repo": None,
        "forge_token_set": False,
    }
    assert all(TOKEN not in r.text for r in (github, moved, removed))


async def test_forge_settings_that_cannot_work_are_422(client: httpx.AsyncClient) -> None:
    no_token = await client.post(
        "/api/v1/projects", json={"name": "a", "repo_url": GITLAB_REPO, "forge": "gitlab"}
    )
    underivable = await client.post(
        "/api/v1/projects",
        json={"name": "b", "repo_url": "/srv/git/b", "forge": "gitea", "forge_token": TOKEN},
    )
    unknown = await client.post(
        "/api/v1/projects",
        json={"name": "c", "repo_url": GITLAB_REPO, "forge": "bitbucket", "forge_token": TOKEN},
    )
    bad_repo = await client.post(
        "/api/v1/projects",
        json={
            "name": "d",
            "repo_url": GITLAB_REPO,
            "forge": "github",
            "forge_repo": "not-a-repo",
            "forge_token": TOKEN,
        },
    )

    assert "forge_token" in assert_problem(no_token, 422)["detail"]
    assert "forge_api_url" in assert_problem(underivable, 422)["detail"]
    assert assert_problem(unknown, 422)["errors"][0]["field"] == "body.forge"
    assert "forge_repo" in assert_problem(bad_repo, 422)["detail"]
    for response in (no_token, underivable, unknown, bad_repo):
        assert TOKEN not in json.dumps(response.json())
    listing = await client.get("/api/v1/projects")
    assert listing.json()["items"] == []
