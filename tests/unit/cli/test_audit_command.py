"""``ferrous audit`` against a real API (uvicorn on a thread) with an in-memory audit log.

People get a table (actor, action, target, status, address), scripts ``--json``; filters go
to the server; ``--since`` takes a moment or a duration back from now; ``--limit`` follows
the server's pages.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from click.testing import Result
from typer.testing import CliRunner

from ferrous.api.app import create_app
from ferrous.cli.audit import moment
from ferrous.cli.main import app
from ferrous.infrastructure.memory import InMemoryAuditLog
from tests.unit.api.fakes import FakeWorld
from tests.unit.cli.conftest import admin_headers, api_in_thread


@pytest.fixture
def server_url(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    world = FakeWorld()
    monkeypatch.setenv("FERROUS_TOKEN", world.people.tokens["admin"])
    services = world.services(audit_log=InMemoryAuditLog())
    with api_in_thread(create_app(services)) as url:
        yield url


def ferrous(url: str, *args: str) -> Result:
    return CliRunner().invoke(app, ["audit", *args, "--url", url])


def test_the_table_and_the_filters(server_url: str) -> None:
    for name in ("app", "lib", "app"):
        httpx.post(
            f"{server_url}/api/v1/projects",
            json={"name": name, "repo_url": "/r.git"},
            headers=admin_headers(),
        )
    httpx.post(f"{server_url}/api/v1/projects/app/builds", json={}, headers=admin_headers())

    table = ferrous(server_url)
    assert table.exit_code == 0, table.output
    header, *rows = table.stdout.splitlines()
    assert header.split() == ["AT", "ACTOR", "ACTION", "TARGET", "RESULT", "SOURCE_IP"]
    assert len(rows) == 4
    assert "POST /api/v1/projects/{project}/builds" in rows[0]
    assert "project=app" in rows[0]
    assert " admin " in rows[0]
    assert "127.0.0.1" in rows[0]
    assert " 409 " in rows[1]

    conflicts = json.loads(ferrous(server_url, "--result", "409", "--json").stdout)
    assert [item["action"] for item in conflicts] == ["POST /api/v1/projects"]
    builds = json.loads(ferrous(server_url, "--action", "POST /api/v1/projects/", "--json").stdout)
    assert [item["target"] for item in builds] == [{"project": "app"}]
    recent = json.loads(ferrous(server_url, "--since", "1h", "--json").stdout)
    assert len(recent) == 4
    assert json.loads(ferrous(server_url, "--until", "1h", "--json").stdout) == []
    assert json.loads(ferrous(server_url, "--actor", "nobody", "--json").stdout) == []


def test_limit_follows_the_pages(server_url: str) -> None:
    for n in range(5):
        httpx.post(
            f"{server_url}/api/v1/projects",
            json={"name": f"p{n}", "repo_url": "/r.git"},
            headers=admin_headers(),
        )
    two = ferrous(server_url, "--limit", "2", "--json")
    assert [item["result"] for item in json.loads(two.stdout)] == [201, 201]
    assert "raise --limit" in two.stderr
    everything = json.loads(ferrous(server_url, "--limit", "500", "--json").stdout)
    assert len(everything) == 5


def test_bad_moments_and_server_errors(server_url: str) -> None:
    bad = ferrous(server_url, "--since", "last tuesday")
    assert bad.exit_code == 1
    assert "--since: 'last tuesday' is neither" in bad.stderr
    refused = ferrous(server_url, "--result", "42")
    assert refused.exit_code == 1
    assert "HTTP 422" in refused.stderr


def test_moments() -> None:
    now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    assert moment("90m", "--since", now) == (now - timedelta(minutes=90)).isoformat()
    assert moment("2026-02-01T10:00:00Z", "--since", now) == "2026-02-01T10:00:00+00:00"
    assert moment("2026-02-01", "--since", now) == "2026-02-01T00:00:00+00:00"
    assert moment("2026-02-01T12:00:00+02:00", "--since", now) == "2026-02-01T10:00:00+00:00"
