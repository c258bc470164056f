from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from ferrous.api.app import create_app
from tests.unit.api.fakes import REGISTRATION_TOKEN, FakeWorld


@pytest.fixture
def world() -> FakeWorld:
    return FakeWorld()


@pytest.fixture
def app(world: FakeWorld) -> FastAPI:
    return create_app(world.services())


@pytest.fixture
async def client(app: FastAPI, world: FakeWorld) -> AsyncIterator[httpx.AsyncClient]:
    """A client signed in as an admin (``world.people`` has the other roles' tokens)."""
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://test", headers=world.people.headers()
    ) as client:
        yield client


async def create_project(client: httpx.AsyncClient, name: str = "ferrous") -> dict[str, Any]:
    response = await client.post(
        "/api/v1/projects", json={"name": name, "repo_url": f"/srv/git/{name}.git"}
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def trigger(client: httpx.AsyncClient, project: str = "ferrous") -> dict[str, Any]:
    response = await client.post(f"/api/v1/projects/{project}/builds", json={})
    assert response.status_code == 201, response.text
    return dict(response.json())


async def register_agent(client: httpx.AsyncClient, name: str = "builder-01") -> dict[str, str]:
    """The Authorization header of a newly registered agent."""
    response = await client.post(
        "/api/v1/agent/register",
        json={"token": REGISTRATION_TOKEN, "name": name, "labels": ["linux"], "capacity": 2},
    )
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = dict(response.json())
    assert body["status"] == status
    assert body["type"].startswith("urn:ferrous:problem:")
    assert {"title", "detail", "instance", "request_id"} <= body.keys()
    assert body["request_id"] == response.headers["x-request-id"]
    return body
