"""Schedules through the API, on the real bus, use cases and in-memory adapters."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from ferrous.api.app import create_app
from ferrous.api.services import ApiServices
from ferrous.application.dependencies import Dependencies
from ferrous.application.messagebus import MessageBus
from ferrous.infrastructure.memory import InMemoryQueries, InMemoryStore, memory_uow_factory
from tests.auth import people
from tests.unit.api.conftest import assert_problem
from tests.unit.api.fakes import FakeFeed, FakeWaiter
from tests.unit.api.test_with_memory_adapters import PIPELINE, FolderSources, StoreLogs

T0 = datetime(2025, 1, 31, 12, 0, tzinfo=UTC)


class Clock:
    def now(self) -> datetime:
        return T0


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    (tmp_path / ".ferrous.yml").write_text(PIPELINE)
    store = InMemoryStore()
    bus = MessageBus(
        memory_uow_factory(store), Dependencies(clock=Clock(), sources=FolderSources(tmp_path))
    )

    async def no_agent(token_hash: str) -> str | None:
        return None

    signed = people(store)
    services = ApiServices(
        bus=bus,
        queries=InMemoryQueries(store),
        logs_reader=StoreLogs(store),
        log_events=FakeFeed(),
        claim_waiter=FakeWaiter(),
        agent_by_token_hash=no_agent,
        agent_registration_token="reg",
        authenticator=signed.authenticator,
    )
    transport = httpx.ASGITransport(create_app(services))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://test", headers=signed.headers()
    ) as client:
        created = await client.post(
            "/api/v1/projects", json={"name": "demo", "repo_url": "/srv/demo.git"}
        )
        assert created.status_code == 201, created.text
        yield client


async def create(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    response = await client.post("/api/v1/projects/demo/schedules", json=body)
    assert response.status_code == 201, response.text
    assert response.headers["location"] == f"/api/v1/schedules/{response.json()['id']}"
    return dict(response.json())


async def test_create_list_and_get(client: httpx.AsyncClient) -> None:
    schedule = await create(
        client,
        cron="0 3 * * *",
        timezone="Europe/Paris",
        ref="main",
        variables={"NIGHTLY": "1"},
        description="nightly",
    )
    assert schedule == {
        "id": schedule["id"],
        "project_id": schedule["project_id"],
        "pipeline_id": schedule["pipeline_id"],
        "pipeline_name": "default",
        "description": "nightly",
        "cron": "0 3 * * *",
        "timezone": "Europe/Paris",
        "ref": "main",
        "variables": {"NIGHTLY": "1"},
        "active": True,
        "next_run_at": "2025-02-01T02:00:00Z",  # 03:00 in Paris
        "last_run_at": None,
        "last_build_id": None,
        "created_at": "2025-01-31T12:00:00Z",
    }
    other = await create(client, cron="@hourly", active=False)
    assert (other["timezone"], other["ref"], other["next_run_at"]) == ("UTC", None, None)

    listed = (await client.get("/api/v1/projects/demo/schedules")).json()["items"]
    assert [s["id"] for s in listed] == [schedule["id"], other["id"]]
    assert (await client.get(f"/api/v1/schedules/{schedule['id']}")).json() == schedule


async def test_a_named_pipeline_of_the_project(client: httpx.AsyncClient) -> None:
    nightly = (
        await client.post("/api/v1/projects/demo/pipelines", json={"name": "nightly"})
    ).json()
    by_name = await create(client, cron="@daily", pipeline="nightly")
    by_id = await create(client, cron="@daily", pipeline=nightly["id"])
    assert by_name["pipeline_id"] == by_id["pipeline_id"] == nightly["id"]
    missing = await client.post(
        "/api/v1/projects/demo/schedules", json={"cron": "@daily", "pipeline": "nope"}
    )
    assert "no pipeline 'nope'" in assert_problem(missing, 404)["detail"]


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        ({"cron": "0 3 * *"}, 422, "needs five: minute hour day-of-month month day-of-week"),
        ({"cron": "0 3 * * *", "timezone": "Europe/Pariss"}, 422, "unknown time zone"),
        ({"cron": "99 * * * *"}, 422, "is invalid"),
        ({"cron": "@daily", "variables": {"NO WAY": "x"}}, 422, ""),
        ({"timezone": "UTC"}, 422, ""),
    ],
)
async def test_invalid_schedules_are_refused(
    client: httpx.AsyncClient, body: dict[str, Any], status: int, detail: str
) -> None:
    response = await client.post("/api/v1/projects/demo/schedules", json=body)
    assert detail in assert_problem(response, status)["detail"]
    assert (await client.get("/api/v1/projects/demo/schedules")).json() == {"items": []}


async def test_unknown_projects_and_schedules_are_not_found(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/api/v1/projects/nope/schedules"), 404)
    assert_problem(
        await client.post("/api/v1/projects/nope/schedules", json={"cron": "@daily"}), 404
    )
    for method, path in (
        ("GET", "/api/v1/schedules/nope"),
        ("PATCH", "/api/v1/schedules/nope"),
        ("DELETE", "/api/v1/schedules/nope"),
        ("POST", "/api/v1/schedules/nope/run"),
    ):
        json = {"description": "x"} if method == "PATCH" else None
        assert_problem(await client.request(method, path, json=json), 404)


async def test_patch_changes_only_what_is_given(client: httpx.AsyncClient) -> None:
    schedule = await create(client, cron="0 3 * * *", ref="main", variables={"A": "1"})
    url = f"/api/v1/schedules/{schedule['id']}"

    described = (await client.patch(url, json={"description": "nightly", "cron": None})).json()
    assert (described["description"], described["cron"], described["ref"]) == (
        "nightly",
        "0 3 * * *",
        "main",
    )
    retimed = (await client.patch(url, json={"cron": "30 4 * * *", "ref": None})).json()
    assert (retimed["next_run_at"], retimed["ref"]) == ("2025-02-01T04:30:00Z", None)
    replaced = (await client.patch(url, json={"variables": {"B": "2"}})).json()
    assert replaced["variables"] == {"B": "2"}
    off = (await client.patch(url, json={"active": False})).json()
    assert (off["active"], off["next_run_at"]) == (False, None)
    bad = await client.patch(url, json={"timezone": "Nowhere"})
    assert "unknown time zone" in assert_problem(bad, 422)["detail"]
    assert (await client.get(url)).json() == off


async def test_delete(client: httpx.AsyncClient) -> None:
    schedule = await create(client, cron="@daily")
    deleted = await client.delete(f"/api/v1/schedules/{schedule['id']}")
    assert (deleted.status_code, deleted.content) == (204, b"")
    assert_problem(await client.get(f"/api/v1/schedules/{schedule['id']}"), 404)


async def test_run_now_makes_a_schedule_build_and_keeps_the_next_tick(
    client: httpx.AsyncClient,
) -> None:
    schedule = await create(client, cron="0 3 * * *", variables={"NIGHTLY": "1"})

    response = await client.post(f"/api/v1/schedules/{schedule['id']}/run")

    assert response.status_code == 201, response.text
    build = response.json()
    assert response.headers["location"] == f"/api/v1/builds/{build['id']}"
    assert (build["source"], build["schedule_id"], build["variables"]) == (
        "schedule",
        schedule["id"],
        ["NIGHTLY"],
    )
    after = (await client.get(f"/api/v1/schedules/{schedule['id']}")).json()
    assert (after["last_build_id"], after["last_run_at"]) == (build["id"], "2025-01-31T12:00:00Z")
    assert after["next_run_at"] == schedule["next_run_at"]
