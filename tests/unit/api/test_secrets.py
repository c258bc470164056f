"""Secret variables through the API, on the real bus and in-memory adapters.

A value goes in with ``PUT`` and never comes out: not in the answer, a listing, an error,
nor sealed. A project's variables and the instance's are apart; unknown projects are 404 and
invalid names or values 422 with the reason.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ferrous.api.app import create_app
from ferrous.application.dependencies import Dependencies, SystemClock
from ferrous.application.messagebus import MessageBus
from ferrous.infrastructure.memory import InMemoryQueries, InMemoryStore, memory_uow_factory
from ferrous.infrastructure.security.secret_box import AesGcmSecretBox, KeyRing
from tests.auth import people
from tests.unit.api.conftest import assert_problem, create_project
from tests.unit.api.fakes import FakeWorld
from tests.unit.api.test_with_memory_adapters import FolderSources

SECRETS = "/api/v1/projects/ferrous/secrets"
INSTANCE = "/api/v1/secrets"
VALUE = "dk_live_7f3a9c2e5b1d4f8a0c6e2b9d7f1a3c5e"


@pytest.fixture
def store() -> InMemoryStore:
    return InMemoryStore()


@pytest.fixture
async def client(store: InMemoryStore, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    bus = MessageBus(
        memory_uow_factory(store),
        Dependencies(
            clock=SystemClock(),
            sources=FolderSources(tmp_path),
            secret_box=AesGcmSecretBox(KeyRing([secrets.token_bytes(32)])),
        ),
    )
    world = FakeWorld(people=people(store))
    services = world.services(bus=bus, queries=InMemoryQueries(store))
    transport = httpx.ASGITransport(create_app(services))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://test", headers=world.people.headers()
    ) as client:
        await create_project(client)
        yield client


class Seen:
    """Every answer's body, to check at the end that no value was ever in one."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.bodies: list[str] = []

    async def __call__(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        response = await self.client.request(method, url, **kwargs)
        self.bodies.append(response.text)
        return response

    def never_showed(self, *values: str) -> None:
        for body in self.bodies:
            for value in values:
                assert value not in body


async def test_put_list_replace_delete_and_the_value_never_comes_out(
    client: httpx.AsyncClient, store: InMemoryStore
) -> None:
    call = Seen(client)
    created = await call("PUT", f"{SECRETS}/DEPLOY_KEY", json={"value": VALUE, "protected": True})
    assert created.status_code == 201, created.text
    body = created.json()
    assert set(body) == {
        "id",
        "project_id",
        "name",
        "protected",
        "masked",
        "created_at",
        "updated_at",
        "created_by",
    }
    assert (body["name"], body["protected"], body["masked"]) == ("DEPLOY_KEY", True, True)

    replaced = await call("PUT", f"{SECRETS}/DEPLOY_KEY", json={"value": VALUE[::-1]})
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["id"] == body["id"]
    assert (replaced.json()["protected"], replaced.json()["masked"]) == (False, True)

    listed = await call("GET", SECRETS)
    assert [item["name"] for item in listed.json()["items"]] == ["DEPLOY_KEY"]
    assert (await call("GET", INSTANCE)).json()["items"] == []

    [kept] = store.secret_variables.values()
    call.never_showed(VALUE, VALUE[::-1], kept.sealed, kept.sealed.rsplit(":", 1)[1])

    assert (await call("DELETE", f"{SECRETS}/DEPLOY_KEY")).status_code == 204
    assert (await call("GET", SECRETS)).json()["items"] == []
    assert_problem(await call("DELETE", f"{SECRETS}/DEPLOY_KEY"), 404)


async def test_instance_variables_are_apart_from_the_projects(client: httpx.AsyncClient) -> None:
    call = Seen(client)
    assert (await call("PUT", f"{INSTANCE}/REGISTRY", json={"value": VALUE})).status_code == 201
    assert (await call("PUT", f"{SECRETS}/REGISTRY", json={"value": VALUE})).status_code == 201
    [instance] = (await call("GET", INSTANCE)).json()["items"]
    [own] = (await call("GET", SECRETS)).json()["items"]
    assert (instance["project_id"], own["name"]) == (None, "REGISTRY")
    assert own["project_id"] is not None
    assert (await call("DELETE", f"{INSTANCE}/REGISTRY")).status_code == 204
    assert len((await call("GET", SECRETS)).json()["items"]) == 1
    call.never_showed(VALUE)


async def test_unknown_projects_are_404(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/api/v1/projects/nope/secrets"), 404)
    assert_problem(await client.put("/api/v1/projects/nope/secrets/A", json={"value": VALUE}), 404)
    assert_problem(await client.delete("/api/v1/projects/nope/secrets/A"), 404)


@pytest.mark.parametrize(
    ("name", "body", "reason"),
    [
        ("DEPLOY-KEY", {"value": VALUE}, "letters, digits or '_'"),
        ("PIN", {"value": "s3cr3t!"}, "at least 8 characters"),
        ("PEM", {"value": "-----BEGIN-----\nsecret-body\n"}, "single line"),
        ("EMPTY", {"value": "", "masked": False}, "cannot be empty"),
        ("BIG", {"value": "x" * (64 * 1024 + 1), "masked": False}, "at most 65536 bytes"),
    ],
)
async def test_invalid_names_and_values_are_422_and_say_why(
    client: httpx.AsyncClient, name: str, body: dict[str, Any], reason: str
) -> None:
    for url in (f"{SECRETS}/{name}", f"{INSTANCE}/{name}"):
        problem = assert_problem(await client.put(url, json=body), 422)
        assert reason in problem["detail"]
        if body["value"]:
            assert body["value"].strip() not in str(problem)
    assert (await client.get(SECRETS)).json()["items"] == []


async def test_a_malformed_body_is_422_without_the_value(client: httpx.AsyncClient) -> None:
    problem = assert_problem(
        await client.put(f"{SECRETS}/DEPLOY_KEY", json={"value": VALUE, "masked": "perhaps"}), 422
    )
    assert problem["errors"][0]["field"] == "body.masked"
    assert VALUE not in str(problem)
    problem = assert_problem(
        await client.put(f"{SECRETS}/DEPLOY_KEY", json={"protected": True}), 422
    )
    assert problem["errors"][0]["field"] == "body.value"
