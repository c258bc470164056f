"""Pipeline trigger tokens through the API, on the real bus and in-memory adapters.

Maintainers create (the secret is in that answer only), list and revoke a project's tokens;
an external system starts builds with one in each form GitLab accepts: JSON, a URL-encoded
form (``curl --data``) and multipart (``curl -F``). A wrong or revoked token is 401.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ferrous.api.app import create_app
from ferrous.application.dependencies import Dependencies, SystemClock
from ferrous.application.messagebus import MessageBus
from ferrous.infrastructure.memory import InMemoryQueries, InMemoryStore, memory_uow_factory
from tests.auth import people
from tests.unit.api.conftest import assert_problem, create_project
from tests.unit.api.fakes import FakeWorld
from tests.unit.api.test_with_memory_adapters import FolderSources

TOKENS = "/api/v1/projects/ferrous/trigger-tokens"
TRIGGER = "/api/v1/projects/ferrous/trigger/pipeline"


@pytest.fixture
def store() -> InMemoryStore:
    return InMemoryStore()


@pytest.fixture
async def client(store: InMemoryStore, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    (tmp_path / ".ferrous.yml").write_text("test:\n  script: [make test]\n")
    bus = MessageBus(
        memory_uow_factory(store),
        Dependencies(clock=SystemClock(), sources=FolderSources(tmp_path)),
    )
    world = FakeWorld(people=people(store))
    services = world.services(bus=bus, queries=InMemoryQueries(store))
    transport = httpx.ASGITransport(create_app(services))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://test", headers=world.people.headers()
    ) as client:
        await create_project(client)
        yield client


async def create(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    response = await client.post(TOKENS, json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def built(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    build = dict(response.json())
    assert response.headers["location"] == f"/api/v1/builds/{build['id']}"
    return build


async def test_create_list_and_revoke(client: httpx.AsyncClient, store: InMemoryStore) -> None:
    response = await client.post(TOKENS, json={"description": "deploy", "expires_in": "30d"})
    assert response.status_code == 201, response.text
    assert response.headers["cache-control"] == "no-store"
    created = response.json()
    assert created["token"].startswith("ftt_")
    assert (created["description"], created["status"]) == ("deploy", "active")
    assert created["expires_at"] is not None

    items = (await client.get(TOKENS)).json()["items"]
    assert [item["id"] for item in items] == [created["id"]]
    assert "token" not in items[0]
    assert "token_hash" not in items[0]
    assert created["token"] not in (await client.get(TOKENS)).text

    revoked = await client.delete(f"{TOKENS}/{created['id']}")
    assert revoked.status_code == 204
    assert (await client.get(TOKENS)).json()["items"][0]["status"] == "revoked"
    assert_problem(await client.delete(f"{TOKENS}/nope"), 404)
    assert_problem(await client.get("/api/v1/projects/nope/trigger-tokens"), 404)
    assert_problem(await client.post(TOKENS, json={"expires_in": "soon"}), 422)


async def test_json_trigger_starts_a_build_of_source_trigger(
    client: httpx.AsyncClient, store: InMemoryStore
) -> None:
    token = (await create(client))["token"]
    build = built(
        await client.post(
            TRIGGER, json={"token": token, "ref": "main", "variables": {"DEPLOY": "yes"}}
        )
    )
    assert (build["source"], build["ref"], build["project_name"]) == ("trigger", "main", "ferrous")
    assert [job["name"] for job in build["jobs"]] == ["test"]
    assert store.builds[build["id"]].variables == {"DEPLOY": "yes"}


async def test_gitlab_form_encoded_and_multipart_calls(
    client: httpx.AsyncClient, store: InMemoryStore
) -> None:
    """``curl --data "token=...&ref=main&variables[KEY]=value"`` and ``curl -F ...``."""
    token = (await create(client))["token"]
    form = {"token": token, "ref": "main", "variables[DEPLOY_ENV]": "staging"}
    urlencoded = built(await client.post(TRIGGER, data=form))
    multipart = built(await client.post(TRIGGER, data=form, files={"unused": ("", b"")}))
    in_query = built(await client.post(TRIGGER, params={"token": token, "ref": "main"}))

    for build in (urlencoded, multipart):
        assert store.builds[build["id"]].variables == {"DEPLOY_ENV": "staging"}
        assert build["source"] == "trigger"
    assert store.builds[in_query["id"]].variables == {}


async def test_wrong_revoked_and_foreign_tokens_are_401(
    client: httpx.AsyncClient, store: InMemoryStore
) -> None:
    created = await create(client)
    await create_project(client, "other")
    other = "/api/v1/projects/other/trigger/pipeline"

    assert_problem(await client.post(TRIGGER, data={"token": "ftt_guessed"}), 401)
    assert_problem(await client.post(other, data={"token": created["token"]}), 401)
    await client.delete(f"{TOKENS}/{created['id']}")
    body = assert_problem(await client.post(TRIGGER, data={"token": created["token"]}), 401)
    assert "revoked" in body["detail"]
    assert store.builds == {}


async def test_malformed_triggers_are_422(client: httpx.AsyncClient) -> None:
    token = (await create(client))["token"]
    cases: list[dict[str, Any]] = [
        {"json": {"ref": "main"}},  # no token
        {"json": ["not", "an", "object"]},
        {"content": b"{not json", "headers": {"content-type": "application/json"}},
        {"data": {"token": token, "variables[NOT-A-NAME]": "x"}},
    ]
    for case in cases:
        body = assert_problem(await client.post(TRIGGER, **case), 422)
        assert body["errors"], body
