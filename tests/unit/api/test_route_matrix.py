"""Every route, for every kind of caller: the answer the policy table says.

The real app on the real bus and in-memory adapters, with one person per role, a service
token, an agent and nobody. Each registered route is called with dummy path values and an
empty body; the expectation comes from ``domain.access`` alone (``role_may``,
``Principal.may``), so a route, a permission or a grant added later is checked here
without touching this file. A refusal by the permission layer is recognisable: 401 with
``WWW-Authenticate: Bearer`` (nobody, or a token that names nobody) or 403 problem+json;
anything else (200, 404, 422, or a route's own 401 for a wrong password or signature)
means the caller got past it.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from ferrous.api.app import create_app
from ferrous.api.permissions import route_permissions
from ferrous.application import commands as c
from ferrous.domain.access import Principal, PrincipalKind, Role, role_may
from ferrous.domain.api_token import ApiTokenKind
from ferrous.infrastructure.memory import InMemoryQueries
from tests.auth import People, bearer, people
from tests.unit.api.fakes import FakeWorld
from tests.unit.application.conftest import FakeClock
from tests.unit.application.identities import PASSWORD, Identities, identities

SCOPES = frozenset({"projects:read", "builds:read", "builds:trigger"})
AGENT_ROUTES = "agent:protocol"


@dataclass
class Setup:
    app: FastAPI
    client: httpx.AsyncClient
    ids: Identities
    people: People
    agent: dict[str, str]  # its Authorization header


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[Setup]:
    ids = identities(tmp_path, FakeClock(datetime.now(UTC)))
    signed = people(ids.store, clock=ids.clock, access_tokens=ids.bus.deps.access_tokens)
    signed.service("deploy-bot", *SCOPES)

    async def agent_by_token_hash(token_hash: str) -> str | None:
        found = [a.id for a in ids.store.agents.values() if a.token_hash == token_hash]
        return found[0] if found else None

    services = FakeWorld().services(
        bus=ids.bus,
        queries=InMemoryQueries(ids.store),
        authenticator=signed.authenticator,
        identities=ids.queries,
        agent_by_token_hash=agent_by_token_hash,
        claim_timeout=0.01,
    )
    app = create_app(services)
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        registered = await client.post(
            "/api/v1/agent/register", json={"token": "reg-secret", "name": "builder"}
        )
        assert registered.status_code == 201, registered.text
        yield Setup(app, client, ids, signed, bearer(registered.json()["token"]))


def routes(app: FastAPI) -> list[tuple[str, str, str]]:
    """(method, path with dummy values, permission) of every route; exactly one each."""
    found = []
    for route, permissions in route_permissions(app).items():
        assert len(permissions) == 1, f"{route} declares {permissions}: it needs exactly one"
        method, _, template = route.partition(" ")
        found.append((method, re.sub(r"\{[^}]+\}", "nope", template), permissions[0]))
    return found


async def call(
    client: httpx.AsyncClient, method: str, path: str, headers: dict[str, str] | None
) -> httpx.Response:
    body = {} if method in {"POST", "PUT", "PATCH"} else None
    return await client.request(method, path, headers=headers, json=body)


def unauthenticated(answer: httpx.Response) -> bool:
    return answer.status_code == 401 and answer.headers.get("www-authenticate") == "Bearer"


def refused(answer: httpx.Response) -> bool:
    """Turned away by the permission layer (a route's own checks answer differently)."""
    if answer.status_code == 403:
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["type"] == "urn:ferrous:problem:permission-denied"
        return True
    return unauthenticated(answer)


async def test_the_route_role_matrix(setup: Setup) -> None:
    """Nobody: 401 unless public; a role: 403 unless its grant has the permission, and
    then neither 401 nor 403."""
    wrong: list[str] = []
    for method, path, permission in routes(setup.app):
        answer = await call(setup.client, method, path, None)
        if permission == "public":
            if refused(answer):
                wrong.append(f"nobody {method} {path}: {answer.status_code}")
        elif not unauthenticated(answer):
            wrong.append(f"nobody {method} {path}: {answer.status_code}, not 401")
        for role in (Role.ADMIN, Role.DEVELOPER, Role.VIEWER):
            answer = await call(setup.client, method, path, setup.people.headers(role.value))
            if permission == AGENT_ROUTES:
                expected = 401  # a person's token names no agent
                ok = unauthenticated(answer)
            elif role_may(role, permission):
                expected, ok = 0, not refused(answer)
            else:
                expected, ok = 403, answer.status_code == 403 and refused(answer)
            if not ok:
                shown = f"not {expected}" if expected else "refused"
                wrong.append(f"{role} {method} {path}: {answer.status_code}, {shown}")
    assert wrong == []


def test_a_route_without_a_permission_fails_the_walk(setup: Setup) -> None:
    @setup.app.get("/api/v1/forgotten")
    async def forgotten() -> None: ...

    with pytest.raises(AssertionError, match="GET /api/v1/forgotten declares"):
        routes(setup.app)


async def test_a_service_token_gets_exactly_its_scopes(setup: Setup) -> None:
    service = Principal(
        kind=PrincipalKind.SERVICE, id="-", name="-", role=Role.SERVICE, scopes=SCOPES
    )
    wrong: list[str] = []
    allowed = set()
    for method, path, permission in routes(setup.app):
        if permission == "public":
            continue
        answer = await call(setup.client, method, path, setup.people.headers("deploy-bot"))
        if permission == AGENT_ROUTES:
            ok = unauthenticated(answer)
        elif service.may(permission):
            allowed.add(permission)
            ok = not refused(answer)
        else:
            ok = answer.status_code == 403 and refused(answer)
        if not ok:
            wrong.append(f"service {method} {path} ({permission}): {answer.status_code}")
    assert wrong == []
    assert allowed == SCOPES  # each scope opened at least one route, and only these did


async def test_the_agent_token_opens_the_agent_protocol_only(setup: Setup) -> None:
    wrong: list[str] = []
    for method, path, permission in routes(setup.app):
        answer = await call(setup.client, method, path, setup.agent)
        if permission in (AGENT_ROUTES, "public"):
            ok = not refused(answer)
        else:
            ok = unauthenticated(answer)
        if not ok:
            wrong.append(f"agent {method} {path} ({permission}): {answer.status_code}")
    assert wrong == []


async def test_expired_revoked_tampered_and_refresh_tokens_are_401(setup: Setup) -> None:
    client, ids, signed = setup.client, setup.ids, setup.people
    path = "/api/v1/builds"
    assert (await client.get(path, headers=signed.headers("viewer"))).status_code == 200

    admin = next(u for u in ids.store.users.values() if u.username == "admin")
    expiring = signed.token(admin, ApiTokenKind.PERSONAL, expires_in=timedelta(hours=1))
    revoked = signed.token(admin, ApiTokenKind.PERSONAL)
    signed.revoke(revoked)
    await ids.user("ada", Role.VIEWER)
    session = await ids.login("ada", PASSWORD)
    access = session.access_token
    assert (await client.get(path, headers=bearer(access))).status_code == 200
    assert (await client.get(path, headers=bearer(expiring))).status_code == 200

    header, payload, signature = access.split(".")
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    viewer = signed.tokens["viewer"]
    forged_token = viewer[:-1] + ("x" if viewer[-1] != "x" else "y")
    bad = {
        "tampered access token": f"{header}.{payload}.{flipped}",
        "tampered API token": forged_token,
        "revoked API token": revoked,
        "refresh token": session.refresh_token,
        "agent token": setup.agent["Authorization"].removeprefix("Bearer "),
        "garbage": "not-a-token",
    }
    for what, token in bad.items():
        answer = await client.get(path, headers=bearer(token))
        assert unauthenticated(answer), what
    for header_value in ("Basic YWRtaW46YWRtaW4=", "Bearer", "Bearer "):
        assert unauthenticated(await client.get(path, headers={"Authorization": header_value}))

    ids.clock.advance(hours=2)  # past the access token's 15 minutes and the API token's hour
    for what, token in {"expired access token": access, "expired API token": expiring}.items():
        answer = await client.get(path, headers=bearer(token))
        assert unauthenticated(answer), what
        assert answer.json()["type"] == "urn:ferrous:problem:unauthenticated"


async def test_a_deactivated_person_and_a_demoted_one_count_at_once(setup: Setup) -> None:
    client, ids, signed = setup.client, setup.ids, setup.people
    developer = next(u for u in ids.store.users.values() if u.username == "developer")
    cancel = "/api/v1/builds/nope/cancel"
    assert (await client.post(cancel, headers=signed.headers("developer"))).status_code == 404
    await ids.bus.handle(c.UpdateUser(user_id=developer.id, role=Role.VIEWER))
    assert (await client.post(cancel, headers=signed.headers("developer"))).status_code == 403
    await ids.bus.handle(c.UpdateUser(user_id=developer.id, active=False))
    assert unauthenticated(await client.get("/api/v1/builds", headers=signed.headers("developer")))


def test_the_openapi_document_names_the_token_each_operation_needs(setup: Setup) -> None:
    schema = setup.app.openapi()
    wrong = []
    for route, (permission,) in route_permissions(setup.app).items():
        method, _, path = route.partition(" ")
        operation = schema["paths"].get(path, {}).get(method.lower())
        if operation is None:  # the probe and the docs themselves are not documented
            undocumented = {"/api/openapi.json", "/api/docs", "/healthz", "/readyz", "/metrics"}
            assert path in undocumented, route
            continue
        schemes = {name for need in operation.get("security", []) for name in need}
        expected = {"public": set(), AGENT_ROUTES: {"AgentToken"}}.get(permission, {"BearerToken"})
        if schemes != expected or operation["x-permission"] != permission:
            wrong.append(f"{route}: {sorted(schemes)} {operation.get('x-permission')}")
    assert wrong == []
    bearer_scheme = schema["components"]["securitySchemes"]["BearerToken"]
    assert (bearer_scheme["type"], bearer_scheme["scheme"]) == ("http", "bearer")
