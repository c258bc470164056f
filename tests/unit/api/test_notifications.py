"""Notification rules through the API, on the real bus and in-memory adapters: create, read,
change, remove; secrets and Slack URLs never shown; a test delivery lands in the log;
viewers read, developers manage."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from ferrous.api.app import create_app
from ferrous.application.dependencies import Dependencies, SystemClock
from ferrous.application.messagebus import MessageBus
from ferrous.application.notifications import NotificationReads
from ferrous.infrastructure.memory import InMemoryQueries, InMemoryStore, memory_uow_factory
from ferrous.infrastructure.memory.secret_box import PlaintextSecretBox
from tests.auth import people
from tests.unit.api.conftest import assert_problem, create_project
from tests.unit.api.fakes import FakeWorld
from tests.unit.api.test_with_memory_adapters import FolderSources

RULES = "/api/v1/projects/ferrous/notifications"
SLACK = "https://hooks.slack.com/services/T000/B000/XXXXSECRET"


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    store = InMemoryStore()
    uow_factory = memory_uow_factory(store)
    bus = MessageBus(
        uow_factory,
        Dependencies(
            clock=SystemClock(), sources=FolderSources(tmp_path), secret_box=PlaintextSecretBox()
        ),
    )
    world = FakeWorld(people=people(store))
    services = world.services(
        bus=bus, queries=InMemoryQueries(store), notifications=NotificationReads(uow_factory)
    )
    transport = httpx.ASGITransport(create_app(services))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://test", headers=world.people.headers()
    ) as client:
        await create_project(client)
        yield client


async def test_rules_are_created_read_changed_and_removed(client: httpx.AsyncClient) -> None:
    response = await client.post(
        RULES,
        json={
            "name": "ci-hook",
            "channel": "webhook",
            "target": "https://example.com/hook",
            "branches": ["main", "release/*"],
            "secret": "s3cret-s3cret-s3cret",
        },
    )
    assert response.status_code == 201, response.text
    hook = response.json()
    assert response.headers["location"].endswith(f"/notifications/{hook['id']}")
    assert hook["on"] == ["failure", "recovery"]  # the default
    assert (hook["has_secret"], hook["enabled"]) == (True, True)
    assert "s3cret" not in response.text

    slack = (
        await client.post(RULES, json={"name": "chat", "channel": "slack", "target": SLACK})
    ).json()
    assert slack["target"] == "https://hooks.slack.com/…"

    listed = await client.get(RULES)
    assert [r["id"] for r in listed.json()["items"]] == [hook["id"], slack["id"]]
    assert "XXXXSECRET" not in listed.text

    changed = await client.patch(
        f"{RULES}/{hook['id']}", json={"on": ["always"], "enabled": False, "secret": ""}
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["on"], changed.json()["enabled"], changed.json()["has_secret"]) == (
        ["always"],
        False,
        False,
    )
    assert (await client.get(f"{RULES}/{hook['id']}")).json() == changed.json()

    assert (await client.delete(f"{RULES}/{hook['id']}")).status_code == 204
    assert_problem(await client.get(f"{RULES}/{hook['id']}"), 404)
    assert_problem(await client.delete(f"{RULES}/{hook['id']}"), 404)


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x", "channel": "webhook", "target": "not a url"},
        {"name": "x", "channel": "email", "target": "nobody"},
        {"name": "x", "channel": "carrier-pigeon", "target": "https://example.com"},
        {"name": "x", "channel": "webhook", "target": "https://e.com", "on": []},
        {"name": "x", "channel": "webhook", "target": "https://e.com", "on": ["sometimes"]},
        {"name": "x", "channel": "slack", "target": SLACK, "secret": "s3cret-s3cret-s3cret"},
        {"name": "x", "channel": "webhook", "target": "https://e.com", "secret": "short"},
    ],
)
async def test_bad_rules_are_refused(client: httpx.AsyncClient, body: dict[str, object]) -> None:
    assert_problem(await client.post(RULES, json=body), 422)


async def test_a_test_delivery_is_queued_in_the_log(client: httpx.AsyncClient) -> None:
    rule = (
        await client.post(
            RULES, json={"name": "m", "channel": "email", "target": "dev@example.com"}
        )
    ).json()
    queued = await client.post(f"{RULES}/{rule['id']}/test")
    assert queued.status_code == 202, queued.text
    log = await client.get(f"{RULES}/{rule['id']}/deliveries")
    assert log.status_code == 200, log.text
    [delivery] = log.json()["items"]
    assert delivery["id"] == queued.json()["id"]
    assert (delivery["event"], delivery["status"], delivery["attempts"]) == ("ping", "pending", 0)
    assert delivery["build_id"] is None
    assert_problem(await client.get(f"{RULES}/nope/deliveries"), 404)
    assert_problem(await client.post(f"{RULES}/nope/test"), 404)
