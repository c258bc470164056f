"""``ferrous project add`` reads credentials from files: secrets stay off the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest
from typer.testing import CliRunner

from ferrous.cli import remote
from ferrous.cli.main import app


class FakeClient:
    posts: ClassVar[list[tuple[str, dict[str, Any]]]] = []

    def __init__(self, url: str | None) -> None:
        pass

    def post(self, path: str, json: dict[str, Any]) -> dict[str, Any]:
        self.posts.append((path, json))
        return {"name": json["name"], "id": "p-1"}


@pytest.fixture
def posts(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, Any]]]:
    FakeClient.posts = []
    monkeypatch.setattr(remote, "Client", FakeClient)
    return FakeClient.posts


def test_a_token_file(posts: list[tuple[str, dict[str, Any]]], tmp_path: Path) -> None:
    (tmp_path / "token").write_text("glpat-secret\n")

    result = CliRunner().invoke(
        app,
        ["project", "add", "app", "https://h/x.git", "--token-file", str(tmp_path / "token")],
    )

    assert result.exit_code == 0, result.output
    assert posts == [
        (
            "/projects",
            {
                "name": "app",
                "repo_url": "https://h/x.git",
                "default_branch": "main",
                "credentials": {"kind": "https_token", "token": "glpat-secret"},
            },
        )
    ]


def test_an_ssh_key_file_with_known_hosts(
    posts: list[tuple[str, dict[str, Any]]], tmp_path: Path
) -> None:
    (tmp_path / "key").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n...\n")
    (tmp_path / "known").write_text("git.example.com ssh-ed25519 AAAA\n")

    result = CliRunner().invoke(
        app,
        [
            *("project", "add", "app", "git@git.example.com:ci/x.git"),
            *("--ssh-key-file", str(tmp_path / "key")),
            *("--known-hosts-file", str(tmp_path / "known")),
        ],
    )

    assert result.exit_code == 0, result.output
    assert posts[0][1]["credentials"] == {
        "kind": "ssh_key",
        "private_key": "-----BEGIN OPENSSH PRIVATE KEY-----\n...\n",
        "known_hosts": "git.example.com ssh-ed25519 AAAA\n",
    }


def test_one_kind_of_credentials_at_most(
    posts: list[tuple[str, dict[str, Any]]], tmp_path: Path
) -> None:
    (tmp_path / "f").write_text("x")

    result = CliRunner().invoke(
        app,
        [
            *("project", "add", "app", "https://h/x.git"),
            *("--token-file", str(tmp_path / "f"), "--ssh-key-file", str(tmp_path / "f")),
        ],
    )

    assert result.exit_code == 1
    assert posts == []
