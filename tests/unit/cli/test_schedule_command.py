"""``ferrous schedule list | add | update | run | delete`` against a real API on memory adapters.

The API runs in uvicorn on a thread (the CLI's HTTP client is synchronous); the commands go
through Typer's ``CliRunner``. Errors are one line on stderr and exit code 1.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from click.testing import Result
from typer.testing import CliRunner

from ferrous.api.app import create_app
from ferrous.api.services import ApiServices
from ferrous.application.dependencies import Dependencies, SystemClock
from ferrous.application.messagebus import MessageBus
from ferrous.cli.main import app
from ferrous.infrastructure.memory import InMemoryQueries, InMemoryStore, memory_uow_factory
from tests.auth import people
from tests.unit.api.fakes import FakeFeed, FakeLogs, FakeWaiter
from tests.unit.api.test_with_memory_adapters import PIPELINE, FolderSources


@pytest.fixture
def server_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    (tmp_path / ".ferrous.yml").write_text(PIPELINE)
    store = InMemoryStore()
    signed = people(store)
    monkeypatch.setenv("FERROUS_TOKEN", signed.tokens["admin"])
    bus = MessageBus(
        memory_uow_factory(store),
        Dependencies(clock=SystemClock(), sources=FolderSources(tmp_path)),
    )

    async def no_agent(token_hash: str) -> str | None:
        return None

    services = ApiServices(
        bus=bus,
        queries=InMemoryQueries(store),
        logs_reader=FakeLogs(),
        log_events=FakeFeed(),
        claim_waiter=FakeWaiter(),
        agent_by_token_hash=no_agent,
        agent_registration_token="",
        authenticator=signed.authenticator,
    )
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(services), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the API did not start"
        time.sleep(0.01)
    url = "http://{}:{}".format(*sock.getsockname())
    httpx.post(
        f"{url}/api/v1/projects",
        json={"name": "app", "repo_url": "/srv/app.git"},
        headers=signed.headers(),
    )
    yield url
    server.should_exit = True
    thread.join(timeout=10)


def ferrous(url: str, *args: str) -> Result:
    return CliRunner().invoke(app, ["schedule", *args, "--url", url])


def test_add_list_update_run_and_delete(server_url: str) -> None:
    added = ferrous(
        server_url,
        "add", "app", "--cron", "0 3 * * *", "--timezone", "Europe/Paris", "--ref", "main",
        "--var", "NIGHTLY=yes", "--description", "nightly", "--json",
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    schedule = json.loads(added.stdout)
    assert (schedule["cron"], schedule["timezone"], schedule["variables"]) == (
        "0 3 * * *",
        "Europe/Paris",
        {"NIGHTLY": "yes"},
    )

    listed = ferrous(server_url, "list", "app")
    assert listed.exit_code == 0, listed.output
    header, row = listed.stdout.splitlines()
    assert header.split() == [
        "ID",
        "DESCRIPTION",
        "CRON",
        "TIMEZONE",
        "REF",
        "ACTIVE",
        "NEXT_RUN_AT",
    ]
    assert row.startswith(schedule["id"])
    assert "nightly" in row
    assert "Europe/Paris" in row

    updated = ferrous(
        server_url, "update", schedule["id"], "--inactive", "--default-branch", "--no-vars"
    )
    assert updated.exit_code == 0, updated.output
    assert "next run never (inactive)" in updated.stdout
    changed = json.loads(ferrous(server_url, "list", "app", "--json").stdout)[0]
    assert (changed["active"], changed["ref"], changed["variables"]) == (False, None, {})

    ran = ferrous(server_url, "run", schedule["id"], "--json")
    assert ran.exit_code == 0, ran.output
    build = json.loads(ran.stdout)
    assert (build["source"], build["schedule_id"]) == ("schedule", schedule["id"])

    deleted = ferrous(server_url, "delete", schedule["id"])
    assert (deleted.exit_code, deleted.stdout) == (0, f"schedule {schedule['id']} deleted\n")
    assert json.loads(ferrous(server_url, "list", "app", "--json").stdout) == []


def test_mistakes_are_one_line_on_stderr(server_url: str) -> None:
    no_cron = ferrous(server_url, "add", "app")
    assert (no_cron.exit_code, no_cron.stderr) == (
        1,
        'ferrous: give --cron, e.g. --cron "0 3 * * *"\n',
    )
    bad = ferrous(server_url, "add", "app", "--cron", "0 3 * *")
    assert bad.exit_code == 1
    assert "needs five" in bad.stderr
    assert "(HTTP 422)" in bad.stderr
    bad_var = ferrous(server_url, "add", "app", "--cron", "@daily", "--var", "NOEQUALS")
    assert bad_var.exit_code == 2
    nothing = ferrous(server_url, "update", "some-id")
    assert (nothing.exit_code, "nothing to change" in nothing.stderr) == (1, True)
    missing = ferrous(server_url, "delete", "some-id")
    assert missing.exit_code == 1
    assert "no schedule some-id (HTTP 404)" in missing.stderr
