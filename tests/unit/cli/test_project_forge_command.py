"""``ferrous project add --forge ...`` and ``ferrous project update``: the API bodies they
send, the status token read from a file and never from the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest
from typer.testing import CliRunner

from ferrous.cli import project_forge, remote
from ferrous.cli.main import app


class FakeClient:
    sent: ClassVar[list[tuple[str, str, dict[str, Any]]]] = []
    base = "http://ci.test"

    def __init__(self, url: str | None) -> None:
        pass

    def request(self, method: str, path: str, json: dict[str, Any]) -> dict[str, Any]:
        self.sent.append((method, path, json))
        return {
            "name": "app",
            "id": "p-1",
            "forge": json.get("forge", "gitlab"),
            "forge_repo": "g/app",
            "forge_api_url": "https://gl/api/v4",
        }

    def post(self, path: str, json: dict[str, Any]) -> dict[str, Any]:
        return self.request("POST", path, json)


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, dict[str, Any]]]:
    FakeClient.sent = []
    monkeypatch.setattr(remote, "Client", FakeClient)
    monkeypatch.setattr(project_forge, "Client", FakeClient)
    return FakeClient.sent


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "status-token"
    path.write_text("ghp-s3cret\n")
    return path


def test_add_with_a_forge(sent: list[tuple[str, str, dict[str, Any]]], token_file: Path) -> None:
    result = CliRunner().invoke(
        app,
        [
            *("project", "add", "app", "/srv/git/app"),
            *("--forge", "github", "--forge-token-file", str(token_file)),
            *("--forge-api-url", "http://127.0.0.1:9000", "--forge-repo", "o/r"),
        ],
    )

    assert result.exit_code == 0, result.output
    assert sent == [
        (
            "POST",
            "/projects",
            {
                "name": "app",
                "repo_url": "/srv/git/app",
                "default_branch": "main",
                "forge": "github",
                "forge_api_url": "http://127.0.0.1:9000",
                "forge_repo": "o/r",
                "forge_token": "ghp-s3cret",
            },
        )
    ]
    assert "s3cret" not in result.output


def test_update_sends_only_what_is_given(
    sent: list[tuple[str, str, dict[str, Any]]], token_file: Path
) -> None:
    runner = CliRunner()
    token = runner.invoke(app, ["project", "update", "app", "--forge-token-file", str(token_file)])
    derived = runner.invoke(app, ["project", "update", "app", "--forge-repo", ""])
    moved = runner.invoke(
        app, ["project", "update", "app", "--repo", "https://h/x.git", "--no-credentials"]
    )
    stop = runner.invoke(app, ["project", "update", "app", "--forge", "none", "--json"])

    assert [r.exit_code for r in (token, derived, moved, stop)] == [0, 0, 0, 0]
    assert sent == [
        ("PATCH", "/projects/app", {"forge_token": "ghp-s3cret"}),
        ("PATCH", "/projects/app", {"forge_repo": ""}),
        (
            "PATCH",
            "/projects/app",
            {"repo_url": "https://h/x.git", "credentials": {"kind": "none"}},
        ),
        ("PATCH", "/projects/app", {"forge": "none"}),
    ]
    assert "project app updated (forge: gitlab g/app at https://gl/api/v4)" in token.output
    assert '"forge": "none"' in stop.output


def test_update_needs_something_to_change(sent: list[tuple[str, str, dict[str, Any]]]) -> None:
    result = CliRunner().invoke(app, ["project", "update", "app"])

    assert result.exit_code == 1
    assert sent == []
