"""``ferrous agent-token create | list | revoke`` against a real API on the memory adapters.

The API runs in uvicorn on a thread (the CLI's HTTP client is synchronous); the commands go
through Typer's ``CliRunner``. ``create`` prints the token alone on stdout so that scripts
can capture it; errors are one line on stderr and exit code 1.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import Result
from typer.testing import CliRunner

from ferrous.api.app import create_app
from ferrous.api.services import ApiServices
from ferrous.application.dependencies import Dependencies, SystemClock
from ferrous.application.messagebus import MessageBus
from ferrous.cli.main import app
from ferrous.infrastructure.git.source_repository import GitSourceRepository
from ferrous.infrastructure.memory import InMemoryQueries, InMemoryStore, memory_uow_factory
from tests.auth import people
from tests.unit.api.fakes import FakeFeed, FakeLogs, FakeWaiter
from tests.unit.cli.conftest import api_in_thread


@pytest.fixture
def server_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    store = InMemoryStore()
    signed = people(store)
    monkeypatch.setenv("FERROUS_TOKEN", signed.tokens["admin"])
    bus = MessageBus(
        memory_uow_factory(store),
        Dependencies(clock=SystemClock(), sources=GitSourceRepository(tmp_path / "trees")),
    )

    async def agent_by_token_hash(token_hash: str) -> str | None:
        return next((a.id for a in store.agents.values() if a.token_hash == token_hash), None)

    services = ApiServices(
        bus=bus,
        queries=InMemoryQueries(store),
        logs_reader=FakeLogs(),
        log_events=FakeFeed(),
        claim_waiter=FakeWaiter(),
        agent_by_token_hash=agent_by_token_hash,
        agent_registration_token="",
        authenticator=signed.authenticator,
    )
    with api_in_thread(create_app(services)) as url:
        yield url


def ferrous(url: str, *args: str) -> Result:
    return CliRunner().invoke(app, ["agent-token", *args, "--url", url])


def register(url: str, token: str, name: str) -> httpx.Response:
    return httpx.post(f"{url}/api/v1/agent/register", json={"token": token, "name": name})


def test_create_list_revoke(server_url: str) -> None:
    created = ferrous(server_url, "create", "--description", "rack 3", "--max-uses", "2")
    assert created.exit_code == 0, created.output
    token = created.stdout.strip()
    assert token.startswith("frt_")
    assert "\n" not in token
    assert "not shown again" in created.stderr
    assert "2 use(s)" in created.stderr
    assert "never expires" in created.stderr

    assert register(server_url, token, "builder").status_code == 201
    table = ferrous(server_url, "list")
    assert table.exit_code == 0, table.output
    header, row = table.stdout.splitlines()
    assert header.split() == [
        "ID",
        "DESCRIPTION",
        "STATUS",
        "USES",
        "MAX_USES",
        "EXPIRES_AT",
        "LAST_USED_AT",
    ]
    assert "rack 3" in row
    assert " active " in row
    assert token not in table.stdout
    [item] = json.loads(ferrous(server_url, "list", "--json").stdout)
    assert (item["uses"], item["max_uses"], item["status"]) == (1, 2, "active")

    revoked = ferrous(server_url, "revoke", item["id"])
    assert revoked.exit_code == 0, revoked.output
    assert revoked.stdout == f"agent registration token {item['id']} revoked\n"
    assert register(server_url, token, "late").status_code == 401
    [item] = json.loads(ferrous(server_url, "list", "--json").stdout)
    assert item["status"] == "revoked"


def test_create_with_an_expiry_as_json(server_url: str) -> None:
    created = ferrous(server_url, "create", "--expires-in", "12h", "--json")

    assert created.exit_code == 0, created.output
    body = json.loads(created.stdout)
    assert body["token"].startswith("frt_")
    assert body["expires_at"] is not None
    assert body["max_uses"] is None


def test_errors_are_one_line_and_exit_1(server_url: str) -> None:
    missing = ferrous(server_url, "revoke", "nope")
    assert missing.exit_code == 1
    assert missing.stderr == "ferrous: no agent registration token nope (HTTP 404)\n"

    bad = ferrous(server_url, "create", "--expires-in", "soon")
    assert bad.exit_code == 1
    assert "body.expires_in" in bad.stderr
    assert "HTTP 422" in bad.stderr

    empty = ferrous(server_url, "list")
    assert empty.stdout == "(none)\n"
