"""``ferrous project trigger-token create | list | revoke`` against a real API on memory.

``create`` prints the token alone on stdout, with a ``curl`` line for starting builds on
stderr; ``list`` never shows a secret; errors are one line and exit code 1.
"""

from __future__ import annotations

import json

import httpx
from click.testing import Result
from typer.testing import CliRunner

from ferrous.cli.main import app
from tests.unit.cli.conftest import admin_headers
from tests.unit.cli.test_agent_token_command import server_url

__all__ = ["server_url"]  # the fixture: a real API on a thread


def ferrous(url: str, *args: str) -> Result:
    return CliRunner().invoke(app, ["project", "trigger-token", *args, "--url", url])


def test_create_list_revoke(server_url: str) -> None:
    httpx.post(
        f"{server_url}/api/v1/projects",
        json={"name": "app", "repo_url": "/srv/git/app.git"},
        headers=admin_headers(),
    ).raise_for_status()
    created = ferrous(server_url, "create", "app", "--description", "deploy", "--expires-in", "7d")
    assert created.exit_code == 0, created.output
    token = created.stdout.strip()
    assert token.startswith("ftt_")
    assert "not shown again" in created.stderr
    assert f"{server_url}/api/v1/projects/app/trigger/pipeline" in created.stderr
    assert token not in created.stderr

    table = ferrous(server_url, "list", "app")
    assert table.exit_code == 0, table.output
    header, row = table.stdout.splitlines()
    assert header.split()[:3] == ["ID", "DESCRIPTION", "STATUS"]
    assert "deploy" in row
    assert " active " in row
    assert token not in table.stdout

    [item] = json.loads(ferrous(server_url, "list", "app", "--json").stdout)
    revoked = ferrous(server_url, "revoke", "app", item["id"])
    assert revoked.stdout == f"trigger token {item['id']} revoked\n"
    [item] = json.loads(ferrous(server_url, "list", "app", "--json").stdout)
    assert item["status"] == "revoked"

    missing = ferrous(server_url, "list", "nope")
    assert missing.exit_code == 1
    assert "HTTP 404" in missing.stderr
