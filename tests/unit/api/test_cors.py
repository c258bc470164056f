"""CORS by configured origins only: a listed origin gets the headers (with credentials), any
other gets none, preflights are answered, and without origins there are no CORS headers."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from ferrous.api.app import create_app
from ferrous.api.cors import checked_origins
from ferrous.domain.errors import ConfigInvalid
from tests.unit.api.fakes import FakeWorld

ALLOWED = "https://ci.example.com"
PREFLIGHT = {
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization, content-type",
}


async def client_for(world: FakeWorld, origins: tuple[str, ...]) -> httpx.AsyncClient:
    app = create_app(world.services(cors_origins=origins))
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app), base_url="http://test", headers=world.people.headers()
    )


@pytest.fixture
async def client(world: FakeWorld) -> AsyncIterator[httpx.AsyncClient]:
    async with await client_for(world, (ALLOWED, "http://localhost:5173")) as client:
        yield client


async def test_an_allowed_origin_gets_the_headers(client: httpx.AsyncClient) -> None:
    answer = await client.get("/api/v1/projects", headers={"Origin": ALLOWED})
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == ALLOWED
    assert answer.headers["access-control-allow-credentials"] == "true"
    assert "x-request-id" in answer.headers["access-control-expose-headers"].lower()
    other = await client.get("/api/v1/projects", headers={"Origin": "http://localhost:5173"})
    assert other.headers["access-control-allow-origin"] == "http://localhost:5173"


async def test_another_origin_gets_none(client: httpx.AsyncClient) -> None:
    answer = await client.get("/api/v1/projects", headers={"Origin": "https://evil.example"})
    assert answer.status_code == 200  # the browser, not the server, withholds the answer
    assert "access-control-allow-origin" not in answer.headers  # so the browser refuses it


async def test_a_preflight_is_answered_for_allowed_origins_only(
    client: httpx.AsyncClient,
) -> None:
    answer = await client.options("/api/v1/projects", headers={"Origin": ALLOWED, **PREFLIGHT})
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == ALLOWED
    assert "POST" in answer.headers["access-control-allow-methods"]
    assert "authorization" in answer.headers["access-control-allow-headers"].lower()
    refused = await client.options(
        "/api/v1/projects", headers={"Origin": "https://evil.example", **PREFLIGHT}
    )
    assert refused.status_code == 400
    assert "access-control-allow-origin" not in refused.headers


async def test_no_origins_no_cors_headers(world: FakeWorld) -> None:
    async with await client_for(world, ()) as client:
        answer = await client.get("/api/v1/projects", headers={"Origin": ALLOWED})
        assert not [h for h in answer.headers if h.startswith("access-control-")]
        preflight = await client.options(
            "/api/v1/projects", headers={"Origin": ALLOWED, **PREFLIGHT}
        )
        assert preflight.status_code == 405
        assert not [h for h in preflight.headers if h.startswith("access-control-")]


def test_origins_are_checked() -> None:
    assert checked_origins(["https://CI.example.com/", "http://localhost:8080"]) == [
        "https://ci.example.com",
        "http://localhost:8080",
    ]
    for bad in ("*", "https://*.example.com", "ci.example.com", "https://ci.example.com/app"):
        with pytest.raises(ConfigInvalid, match="FERROUS_CORS_ORIGINS"):
            checked_origins([bad])
