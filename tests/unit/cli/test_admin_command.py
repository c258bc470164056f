"""``ferrous admin`` on a SQLite data dir, with no server running.

Secrets (a generated password, a token) are alone on stdout; what the commands did is on
stderr; errors are one line and exit code 1. What was done is checked by signing in.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from typer.testing import CliRunner

from ferrous.application import commands as c
from ferrous.application.administration import administration
from ferrous.cli.main import app
from ferrous.domain.errors import InvalidCredentials
from ferrous.infrastructure.settings import load_settings


def ferrous(data_dir: Path, *args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(app, ["admin", *args, "--data-dir", str(data_dir)], input=stdin)


def sign_in(data_dir: Path, username: str, password: str) -> Any:
    async def main() -> Any:
        async with administration(load_settings({}, data_dir=data_dir)) as admin:
            return await admin.bus.handle(c.Login(username=username, password=password))

    return asyncio.run(main())


def test_create_and_list_users(tmp_path: Path) -> None:
    created = ferrous(
        tmp_path, "user", "create", "Alice", "--role", "developer", "--email", "a@b.example"
    )
    assert created.exit_code == 0, created.output
    password = created.stdout.strip()
    assert len(password) >= 20
    assert "user alice created (developer)" in created.stderr
    assert password not in created.stderr
    assert sign_in(tmp_path, "alice", password).access_token

    given = ferrous(tmp_path, "user", "create", "bob", "--password-stdin", stdin="s3cret pass\n")
    assert given.exit_code == 0, given.output
    assert given.stdout == ""
    assert sign_in(tmp_path, "bob", "s3cret pass").access_token

    table = ferrous(tmp_path, "user", "list")
    assert table.exit_code == 0, table.output
    header, *rows = table.stdout.splitlines()
    assert header.split() == ["ID", "USERNAME", "ROLE", "ACTIVE", "EMAIL", "CREATED_AT"]
    assert [row.split()[1:4] for row in rows] == [
        ["alice", "developer", "True"],
        ["bob", "viewer", "True"],
    ]
    items = json.loads(ferrous(tmp_path, "user", "list", "--json").stdout)
    assert [(i["username"], i["email"]) for i in items] == [("alice", "a@b.example"), ("bob", None)]
    assert "password" not in str(items)

    again = ferrous(tmp_path, "user", "create", "ALICE")
    assert again.exit_code == 1
    assert again.stderr == "ferrous: a user named 'alice' exists already\n"
    bad = ferrous(tmp_path, "user", "create", "eve", "--role", "service")
    assert bad.exit_code == 1
    assert "a person's role" in bad.stderr


def test_change_users_and_make_tokens(tmp_path: Path) -> None:
    ferrous(tmp_path, "user", "create", "root", "--role", "admin")
    ferrous(tmp_path, "user", "create", "ada", "--password-stdin", stdin="first pass\n")

    reset = ferrous(
        tmp_path, "user", "set-password", "ada", "--password-stdin", stdin="new pass!\n"
    )
    assert reset.exit_code == 0, reset.output
    with pytest.raises(InvalidCredentials):
        sign_in(tmp_path, "ada", "first pass")
    sign_in(tmp_path, "ada", "new pass!")
    generated = ferrous(tmp_path, "user", "set-password", "ada")
    sign_in(tmp_path, "ada", generated.stdout.strip())

    assert ferrous(tmp_path, "user", "set-role", "ada", "admin").stdout == "ada is now admin\n"
    assert ferrous(tmp_path, "user", "disable", "root").stdout == "root disabled\n"
    last = ferrous(tmp_path, "user", "disable", "ada")
    assert last.exit_code == 1
    assert "last active admin" in last.stderr
    assert ferrous(tmp_path, "user", "enable", "root").stdout == "root enabled\n"
    missing = ferrous(tmp_path, "user", "disable", "nobody")
    assert (missing.exit_code, missing.stderr) == (1, "ferrous: no user nobody\n")

    personal = ferrous(
        tmp_path, "token", "create", "--user", "ada", "--name", "ci", "--expires-in", "30d"
    )
    assert personal.exit_code == 0, personal.output
    assert personal.stdout.startswith("fpt_")
    assert "personal token" in personal.stderr
    assert "expires" in personal.stderr
    service = ferrous(
        tmp_path,
        "token",
        "create",
        "--user",
        "root",
        "--name",
        "bot",
        "--service",
        "--scope",
        "builds:read",
        "--scope",
        "builds:trigger",
    )
    assert service.exit_code == 0, service.output
    assert service.stdout.startswith("fst_")
    ferrous(tmp_path, "user", "set-role", "root", "developer")
    refused = ferrous(
        tmp_path,
        "token",
        "create",
        "--user",
        "root",
        "--name",
        "b",
        "--service",
        "--scope",
        "builds:read",
    )
    assert refused.exit_code == 1
    assert "only admins" in refused.stderr
    wrong = ferrous(
        tmp_path, "token", "create", "--user", "ada", "--name", "x", "--expires-in", "soon"
    )
    assert wrong.exit_code == 1
