"""Users, sign-in and API tokens through the API, on the real bus and in-memory adapters.

The authenticator caches for seconds here, as in production: a logout or a revocation
must still count at the next request, because the routes tell it to forget.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from ferrous.api.app import create_app
from ferrous.application import commands as c
from ferrous.application.authentication import Authenticator
from ferrous.domain.access import Role
from ferrous.infrastructure.memory import InMemoryQueries
from tests.unit.api.conftest import assert_problem
from tests.unit.api.fakes import FakeWorld
from tests.unit.application.conftest import FakeClock
from tests.unit.application.identities import PASSWORD, Identities, identities

LOGIN = "/api/v1/auth/login"


@pytest.fixture
def ids(tmp_path: Path) -> Identities:
    return identities(tmp_path, FakeClock(datetime.now(UTC)))  # the routes read the real time


@pytest.fixture
async def client(ids: Identities) -> AsyncIterator[httpx.AsyncClient]:
    authenticator = Authenticator(ids.bus.uow_factory, ids.bus.deps.access_tokens, ids.clock)
    services = FakeWorld().services(
        bus=ids.bus,
        queries=InMemoryQueries(ids.store),
        authenticator=authenticator,
        identities=ids.queries,
    )
    transport = httpx.ASGITransport(create_app(services))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        await ids.user("root", Role.ADMIN)
        await ids.user("ada", Role.DEVELOPER)
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def login(client: httpx.AsyncClient, username: str = "ada") -> dict[str, Any]:
    response = await client.post(LOGIN, json={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    return dict(response.json())


async def me(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.get("/api/v1/auth/me", headers=bearer(token))


async def test_sign_in_refresh_and_sign_out(client: httpx.AsyncClient) -> None:
    pair = await login(client)
    assert pair["token_type"] == "bearer"
    assert pair["expires_in"] == 900
    assert pair["refresh_token"].startswith("frf_")

    found = (await me(client, pair["access_token"])).json()
    assert (found["kind"], found["name"], found["role"], found["scopes"]) == (
        "user",
        "ada",
        "developer",
        [],
    )
    assert "builds:trigger" in found["permissions"]
    assert "users:admin" not in found["permissions"]

    refreshed = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}
    )
    assert refreshed.status_code == 200, refreshed.text
    new = refreshed.json()
    assert (await me(client, new["access_token"])).status_code == 200

    out = await client.post("/api/v1/auth/logout", headers=bearer(new["access_token"]))
    assert out.status_code == 204
    for token in (new["access_token"], pair["access_token"]):
        assert_problem(await me(client, token), 401)
    again = await client.post("/api/v1/auth/refresh", json={"refresh_token": new["refresh_token"]})
    assert_problem(again, 401)


async def test_refused_sign_ins_and_tokens(client: httpx.AsyncClient) -> None:
    wrong = await client.post(LOGIN, json={"username": "ada", "password": "nope"})
    unknown = await client.post(LOGIN, json={"username": "zed", "password": PASSWORD})
    assert assert_problem(wrong, 401)["detail"] == assert_problem(unknown, 401)["detail"]
    assert_problem(await client.post(LOGIN, json={"username": "ada"}), 422)

    pair = await login(client)
    reused = {"refresh_token": pair["refresh_token"]}
    assert (await client.post("/api/v1/auth/refresh", json=reused)).status_code == 200
    assert_problem(await client.post("/api/v1/auth/refresh", json=reused), 401)

    missing = assert_problem(await client.get("/api/v1/auth/me"), 401)
    assert "Authorization" in missing["detail"]
    assert (await client.get("/api/v1/auth/me")).headers["www-authenticate"] == "Bearer"
    for token in ("garbage", pair["refresh_token"], "fpt_unknown"):
        assert_problem(await me(client, token), 401)


async def test_people_manage_their_tokens(client: httpx.AsyncClient) -> None:
    access = (await login(client))["access_token"]
    created = await client.post(
        "/api/v1/tokens", json={"name": "laptop", "expires_in": "30d"}, headers=bearer(access)
    )
    assert created.status_code == 201, created.text
    assert created.headers["cache-control"] == "no-store"
    token = created.json()
    assert token["token"].startswith("fpt_")
    assert (token["kind"], token["status"], token["prefix"]) == (
        "personal",
        "active",
        token["token"][:12],
    )
    assert token["expires_at"] is not None

    found = (await me(client, token["token"])).json()
    assert (found["name"], found["kind"]) == ("ada", "user")
    listed = await client.get("/api/v1/tokens", headers=bearer(token["token"]))
    assert [item["id"] for item in listed.json()["items"]] == [token["id"]]
    assert token["token"] not in listed.text
    assert "hash" not in listed.text

    out = await client.post("/api/v1/auth/logout", headers=bearer(token["token"]))
    assert_problem(out, 422)  # an API token has no session to end

    revoked = await client.delete(f"/api/v1/tokens/{token['id']}", headers=bearer(access))
    assert revoked.status_code == 204
    assert_problem(await me(client, token["token"]), 401)
    listed = await client.get("/api/v1/tokens", headers=bearer(access))
    assert listed.json()["items"][0]["status"] == "revoked"
    assert_problem(await client.delete("/api/v1/tokens/nope", headers=bearer(access)), 404)
    assert_problem(await client.get("/api/v1/tokens"), 401)


async def test_admins_make_service_tokens(client: httpx.AsyncClient) -> None:
    body = {"name": "deploy bot", "kind": "service", "scopes": ["builds:trigger", "builds:read"]}
    developer = (await login(client))["access_token"]
    assert_problem(await client.post("/api/v1/tokens", json=body, headers=bearer(developer)), 403)

    admin = (await login(client, "root"))["access_token"]
    created = await client.post("/api/v1/tokens", json=body, headers=bearer(admin))
    assert created.status_code == 201, created.text
    service = created.json()
    assert service["token"].startswith("fst_")
    assert service["scopes"] == ["builds:read", "builds:trigger"]

    as_service = bearer(service["token"])
    assert (await client.get("/api/v1/builds", headers=as_service)).status_code == 200
    assert_problem(await client.get("/api/v1/projects", headers=as_service), 403)
    assert_problem(await me(client, service["token"]), 403)  # a service has no account
    assert_problem(await client.get("/api/v1/tokens", headers=as_service), 403)

    listed = (await client.get("/api/v1/service-tokens", headers=bearer(admin))).json()["items"]
    assert [(item["id"], item["name"]) for item in listed] == [(service["id"], "deploy bot")]
    assert "token" not in listed[0]
    bad = {**body, "scopes": ["agent:protocol"]}
    assert_problem(await client.post("/api/v1/tokens", json=bad, headers=bearer(admin)), 422)

    # an admin revokes anybody's token
    personal = await client.post("/api/v1/tokens", json={"name": "x"}, headers=bearer(developer))
    gone = await client.delete(f"/api/v1/tokens/{personal.json()['id']}", headers=bearer(admin))
    assert gone.status_code == 204
    assert_problem(await me(client, personal.json()["token"]), 401)


async def test_admins_manage_users(client: httpx.AsyncClient, ids: Identities) -> None:
    client.headers.update(bearer((await login(client, "root"))["access_token"]))
    created = await client.post("/api/v1/users", json={"username": "Bob", "role": "viewer"})
    assert created.status_code == 201, created.text
    bob = created.json()
    assert (bob["username"], bob["role"], bob["active"], bob["email"]) == (
        "bob",
        "viewer",
        True,
        None,
    )
    assert created.headers["location"] == f"/api/v1/users/{bob['id']}"
    assert created.headers["cache-control"] == "no-store"
    pair = await client.post(LOGIN, json={"username": "bob", "password": bob["password"]})
    assert pair.status_code == 200

    given = await client.post(
        "/api/v1/users", json={"username": "cy", "password": "long enough", "email": "c@y.example"}
    )
    assert given.json()["password"] is None
    assert_problem(await client.post("/api/v1/users", json={"username": "BOB"}), 409)
    assert_problem(await client.post("/api/v1/users", json={"username": "a b"}), 422)
    assert_problem(
        await client.post("/api/v1/users", json={"username": "x", "role": "service"}), 422
    )

    users = (await client.get("/api/v1/users")).json()["items"]
    assert [user["username"] for user in users] == ["ada", "bob", "cy", "root"]
    assert "hash" not in str(users)
    assert (await client.get("/api/v1/users/bob")).json()["id"] == bob["id"]
    assert_problem(await client.get("/api/v1/users/nobody"), 404)

    access = pair.json()["access_token"]
    assert (await me(client, access)).json()["role"] == "viewer"
    changed = await client.patch(
        f"/api/v1/users/{bob['id']}", json={"role": "developer", "email": "bob@example.com"}
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["role"], changed.json()["email"]) == ("developer", "bob@example.com")
    assert (await me(client, access)).json()["role"] == "developer"  # at once, despite the cache
    cleared = await client.patch("/api/v1/users/bob", json={"email": None})
    assert cleared.json()["email"] is None
    assert cleared.json()["role"] == "developer"

    disabled = await client.patch("/api/v1/users/bob", json={"active": False})
    assert disabled.json()["active"] is False
    assert_problem(await me(client, access), 401)

    root = ids.store.users[(await client.get("/api/v1/users/root")).json()["id"]]
    assert_problem(await client.patch(f"/api/v1/users/{root.id}", json={"role": "viewer"}), 409)
    assert_problem(await client.patch("/api/v1/users/nobody", json={"active": False}), 404)
    short = await client.patch("/api/v1/users/bob", json={"password": "short"})
    assert_problem(short, 422)
    assert await ids.bus.handle(c.UpdateUser(user_id=root.id, email="r@example.com"))
