"""``ferrous project add | update`` with the artifact settings, and ``ferrous project show``,
against a real API on memory: what is sent is what the project keeps and shows."""

from __future__ import annotations

import json

from click.testing import Result
from typer.testing import CliRunner

from ferrous.cli.main import app
from tests.unit.cli.test_agent_token_command import server_url

__all__ = ["server_url"]  # the fixture: a real API on a thread


def ferrous(url: str, *args: str) -> Result:
    return CliRunner().invoke(app, ["project", *args, "--url", url])


def shown(url: str, project: str) -> dict[str, str]:
    result = ferrous(url, "show", project)
    assert result.exit_code == 0, result.output
    pairs = (line.split(":", 1) for line in result.stdout.splitlines())
    return {label: value.strip() for label, value in pairs}


def test_artifact_settings_from_add_to_update(server_url: str) -> None:
    added = ferrous(
        server_url,
        *("add", "app", "/srv/git/app.git"),
        *("--artifacts-expire-in", "1 week", "--no-keep-latest-artifacts"),
    )
    assert added.exit_code == 0, added.output
    first = shown(server_url, "app")
    assert first["artifacts expire in"] == "1 week"
    assert first["keep latest artifacts"] == "no"
    assert (first["name"], first["repository"], first["default branch"]) == (
        "app",
        "/srv/git/app.git",
        "main",
    )
    assert (first["credentials"], first["webhook secret"], first["forge"]) == (
        "none",
        "not set",
        "none",
    )

    updated = ferrous(
        server_url, "update", "app", "--keep-latest-artifacts", "--artifacts-expire-in", ""
    )
    assert updated.exit_code == 0, updated.output
    second = shown(server_url, "app")
    assert second["artifacts expire in"] == "the server's default"
    assert second["keep latest artifacts"] == "yes"

    as_json = json.loads(ferrous(server_url, "show", "app", "--json").stdout)
    assert (as_json["artifacts_expire_in"], as_json["keep_latest_artifacts"]) == (None, True)


def test_defaults_and_refusals(server_url: str) -> None:
    assert ferrous(server_url, "add", "plain", "/srv/git/plain.git").exit_code == 0
    assert shown(server_url, "plain")["keep latest artifacts"] == "yes"  # the server's default

    refused = ferrous(server_url, "update", "plain", "--artifacts-expire-in", "soon")
    assert refused.exit_code == 1
    assert "soon" in refused.stderr
    assert shown(server_url, "plain")["artifacts expire in"] == "the server's default"

    missing = ferrous(server_url, "show", "nope")
    assert missing.exit_code == 1
    assert "HTTP 404" in missing.stderr
