"""Admin-managed agent registration tokens through the API, on the real bus and memory adapters.

Create (the secret is in that answer only), list (never the secret nor its hash), revoke, and
the agent protocol's ``register`` spending them next to the server-wide bootstrap token.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from ferrous.api.app import create_app
from ferrous.api.services import ApiServices
from ferrous.application.dependencies import Dependencies, SystemClock
from ferrous.application.messagebus import MessageBus
from ferrous.application.use_cases.register_agent import hash_token
from ferrous.infrastructure.git.source_repository import GitSourceRepository
from ferrous.infrastructure.memory import InMemoryQueries, InMemoryStore, memory_uow_factory
from tests.auth import people
from tests.unit.api.conftest import assert_problem
from tests.unit.api.fakes import FakeFeed, FakeLogs, FakeWaiter

TOKENS = "/api/v1/agent-registration-tokens"
REGISTER = "/api/v1/agent/register"
BOOTSTRAP = "bootstrap-secret"


@pytest.fixture
def store() -> InMemoryStore:
    return InMemoryStore()


@pytest.fixture
async def client(store: InMemoryStore, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    bus = MessageBus(
        memory_uow_factory(store),
        Dependencies(clock=SystemClock(), sources=GitSourceRepository(tmp_path / "trees")),
    )

    async def agent_by_token_hash(token_hash: str) -> str | None:
        return next((a.id for a in store.agents.values() if a.token_hash == token_hash), None)

    signed = people(store)
    services = ApiServices(
        bus=bus,
        queries=InMemoryQueries(store),
        logs_reader=FakeLogs(),
        log_events=FakeFeed(),
        claim_waiter=FakeWaiter(),
        agent_by_token_hash=agent_by_token_hash,
        agent_registration_token=BOOTSTRAP,
        authenticator=signed.authenticator,
    )
    transport = httpx.ASGITransport(create_app(services))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://test", headers=signed.headers()
    ) as client:
        yield client


async def create(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    response = await client.post(TOKENS, json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def register(client: httpx.AsyncClient, token: str, name: str = "builder") -> httpx.Response:
    return await client.post(REGISTER, json={"token": token, "name": name})


async def listed(client: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    response = await client.get(TOKENS)
    assert response.status_code == 200, response.text
    return {item["id"]: item for item in response.json()["items"]}


async def test_create_shows_the_token_once_and_agents_register_with_it(
    client: httpx.AsyncClient, store: InMemoryStore
) -> None:
    response = await client.post(TOKENS, json={"description": "rack 3", "max_uses": 2})
    assert response.status_code == 201, response.text
    assert response.headers["cache-control"] == "no-store"
    created = response.json()
    assert created["token"].startswith("frt_")
    assert {k: created[k] for k in ("description", "status", "uses", "max_uses")} == {
        "description": "rack 3",
        "status": "active",
        "uses": 0,
        "max_uses": 2,
    }
    assert created["expires_at"] is None
    assert created["revoked_at"] is None

    joined = await register(client, created["token"])
    assert joined.status_code == 201, joined.text
    assert joined.json()["token"].startswith("fra_")

    item = (await listed(client))[created["id"]]
    assert "token" not in item
    assert "token_hash" not in item
    assert hash_token(created["token"]) not in str(item)
    assert (item["uses"], item["status"]) == (1, "active")
    assert item["last_used_at"].endswith("Z")
    [agent] = store.agents.values()
    assert agent.name == "builder"


async def test_the_bootstrap_token_still_registers_without_spending(
    client: httpx.AsyncClient,
) -> None:
    created = await create(client, max_uses=1)
    assert (await register(client, BOOTSTRAP)).status_code == 201

    assert (await listed(client))[created["id"]]["uses"] == 0


async def test_expires_in_is_a_duration_from_now(client: httpx.AsyncClient) -> None:
    before = datetime.now(UTC)
    created = await create(client, expires_in="7d")
    expires = datetime.fromisoformat(created["expires_at"])
    assert before + timedelta(days=7) <= expires <= datetime.now(UTC) + timedelta(days=7)
    seconds = await create(client, expires_in=3600)
    assert datetime.fromisoformat(seconds["expires_at"]) <= datetime.now(UTC) + timedelta(hours=1)


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"expires_in": "soon"}, {"body.expires_in"}),
        ({"expires_in": "0s"}, {"body.expires_in"}),
        # past the last date there is: refused, not a 500
        ({"expires_in": 5157640981960906}, {"body.expires_in"}),
        ({"expires_in": "9" * 400 + " years"}, {"body.expires_in"}),
        ({"max_uses": 0}, {"body.max_uses"}),
        ({"description": "x" * 201}, {"body.description"}),
        ({"expires_in": "1d", "expires_at": "2099-01-01T00:00:00Z"}, {"body"}),
    ],
)
async def test_invalid_requests_name_the_field(
    client: httpx.AsyncClient, body: dict[str, Any], fields: set[str]
) -> None:
    problem = assert_problem(await client.post(TOKENS, json=body), 422)
    assert {e["field"] for e in problem["errors"]} == fields


async def test_an_expiry_in_the_past_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.post(TOKENS, json={"expires_at": "2020-01-01T00:00:00Z"})

    problem = assert_problem(response, 422)
    assert problem["type"] == "urn:ferrous:problem:invalid-value"
    assert "not in the future" in problem["detail"]


async def test_a_used_up_token_is_refused_with_401(client: httpx.AsyncClient) -> None:
    created = await create(client, max_uses=1)
    assert (await register(client, created["token"], "first")).status_code == 201

    refused = assert_problem(await register(client, created["token"], "second"), 401)
    assert "used up" in refused["detail"]
    assert (await listed(client))[created["id"]]["status"] == "used_up"


async def test_an_expired_token_is_refused_with_401(
    client: httpx.AsyncClient, store: InMemoryStore
) -> None:
    created = await create(client, expires_in="1h")
    token = store.registration_tokens[created["id"]]
    past = datetime.now(UTC) - timedelta(seconds=1)
    store.registration_tokens[token.id] = dataclasses.replace(token, expires_at=past)

    refused = assert_problem(await register(client, created["token"]), 401)
    assert "expired" in refused["detail"]
    assert (await listed(client))[created["id"]]["status"] == "expired"


async def test_revoke_closes_the_door(client: httpx.AsyncClient) -> None:
    created = await create(client, description="laptop")
    assert (await register(client, created["token"], "before")).status_code == 201

    revoked = await client.delete(f"{TOKENS}/{created['id']}")
    assert (revoked.status_code, revoked.content) == (204, b"")
    assert (await client.delete(f"{TOKENS}/{created['id']}")).status_code == 204
    refused = assert_problem(await register(client, created["token"], "after"), 401)
    assert "revoked" in refused["detail"]
    item = (await listed(client))[created["id"]]
    assert (item["status"], item["uses"]) == ("revoked", 1)
    assert item["revoked_at"] is not None


async def test_unknown_tokens(client: httpx.AsyncClient) -> None:
    assert_problem(await client.delete(f"{TOKENS}/nope"), 404)
    refused = assert_problem(await register(client, "frt_guessed"), 401)
    assert refused["detail"] == "wrong agent registration token"
    assert (await client.get(TOKENS)).json() == {"items": []}


async def test_the_listing_is_newest_first(client: httpx.AsyncClient) -> None:
    first = await create(client, description="first")
    second = await create(client, description="second")

    items = (await client.get(TOKENS)).json()["items"]
    assert [i["id"] for i in items] == [second["id"], first["id"]]
