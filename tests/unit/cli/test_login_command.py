"""``ferrous login | logout`` and the token every client command sends, against a real API.

The API runs on the memory adapters in uvicorn on a thread, with real password hashing and
signed access tokens; the config dir is the test's own (``XDG_CONFIG_HOME``).
"""

from __future__ import annotations

import asyncio
import json
import socket
import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from ferrous.api.app import create_app
from ferrous.cli import credentials
from ferrous.cli.client import Client
from ferrous.cli.main import app
from ferrous.domain.access import Role
from ferrous.domain.api_token import ApiToken
from ferrous.infrastructure.memory import InMemoryQueries
from tests.unit.api.fakes import FakeWorld
from tests.unit.application.conftest import FakeClock
from tests.unit.application.identities import PASSWORD, Identities, identities
from tests.unit.cli.conftest import api_in_thread


@pytest.fixture
def ids(tmp_path: Path) -> Identities:
    ids = identities(tmp_path, FakeClock(datetime.now(UTC)))
    asyncio.run(ids.user("ada", Role.DEVELOPER))
    return ids


@pytest.fixture
def server_url(ids: Identities) -> Iterator[str]:
    services = FakeWorld().services(
        bus=ids.bus,
        queries=InMemoryQueries(ids.store),
        authenticator=ids.authenticator,
        identities=ids.queries,
    )
    with api_in_thread(create_app(services)) as url:
        yield url


def ferrous(*args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(app, list(args), input=stdin)


def login(url: str, password: str = PASSWORD) -> Result:
    return ferrous(
        "login", "--server", url, "--username", "ada", "--password-stdin", stdin=password + "\n"
    )


def tokens(ids: Identities) -> list[ApiToken]:
    return sorted(ids.store.api_tokens.values(), key=lambda token: token.created_at)


def test_login_keeps_a_personal_token_readable_by_the_user_only(
    server_url: str, ids: Identities, config_home: Path
) -> None:
    done = login(server_url)
    assert done.exit_code == 0, done.output
    assert f"logged in to {server_url} as ada" in done.stderr
    assert done.stdout == ""  # nothing secret printed

    path = config_home / "ferrous" / "credentials.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    kept = json.loads(path.read_text())
    entry = kept["servers"][server_url]
    assert kept["current"] == server_url
    [token] = tokens(ids)
    assert entry == {"token": entry["token"], "token_id": token.id, "username": "ada"}
    assert entry["token"].startswith("fpt_")
    assert token.name == f"ferrous-cli@{socket.gethostname()}"
    assert token.revoked_at is None
    [session] = ids.store.sessions.values()
    assert session.revoked_at is not None  # only the API token stays usable

    listed = ferrous("project", "list", "--json")  # the stored server and its token
    assert listed.exit_code == 0, listed.output
    assert json.loads(listed.stdout) == []


def test_a_looser_file_is_tightened(server_url: str, config_home: Path) -> None:
    path = config_home / "ferrous" / "credentials.json"
    path.parent.mkdir(parents=True, mode=0o755)
    path.write_text('{"servers": {}}')
    path.chmod(0o644)
    assert login(server_url).exit_code == 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_logging_in_again_replaces_the_token_and_logout_revokes_it(
    server_url: str, ids: Identities, config_home: Path
) -> None:
    assert login(server_url).exit_code == 0
    assert login(server_url).exit_code == 0
    first, second = tokens(ids)
    assert first.revoked_at is not None
    assert second.revoked_at is None

    out = ferrous("logout", "--server", server_url)
    assert out.exit_code == 0, out.output
    assert tokens(ids)[1].revoked_at is not None
    assert not (config_home / "ferrous" / "credentials.json").exists()
    again = ferrous("logout", "--server", server_url)
    assert again.exit_code == 1
    assert f"not logged in to {server_url}" in again.stderr


def test_logout_keeps_the_other_servers(server_url: str, ids: Identities) -> None:
    credentials.store("https://other.example", {"token": "fpt_other", "token_id": "t-1"})
    assert login(server_url).exit_code == 0
    assert ferrous("logout", "--server", server_url).exit_code == 0
    assert credentials.stored("https://other.example") == {
        "token": "fpt_other",
        "token_id": "t-1",
    }
    assert credentials.default_server() is None


def test_a_wrong_password_stores_nothing(server_url: str, config_home: Path) -> None:
    done = login(server_url, "not the password")
    assert done.exit_code == 1
    assert "wrong username or password (HTTP 401)" in done.stderr
    assert not (config_home / "ferrous").exists()


def test_without_a_terminal_the_password_comes_from_stdin_only(server_url: str) -> None:
    done = ferrous("login", "--server", server_url, "--username", "ada")
    assert done.exit_code == 1
    assert "--password-stdin" in done.stderr


def test_calls_without_a_usable_token_say_how_to_sign_in(
    server_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    nobody = ferrous("builds", "--url", server_url)
    assert nobody.exit_code == 1
    assert f"not signed in: run `ferrous login --server {server_url}`" in nobody.stderr

    monkeypatch.setenv("FERROUS_TOKEN", "fpt_revoked_or_made_up")
    refused = ferrous("builds", "--url", server_url)
    assert refused.exit_code == 1
    assert "the token was refused" in refused.stderr
    assert "(HTTP 401)" in refused.stderr


def test_a_viewer_is_told_what_is_missing(
    server_url: str, ids: Identities, monkeypatch: pytest.MonkeyPatch
) -> None:
    viewer = asyncio.run(ids.user("vic", Role.VIEWER))
    monkeypatch.setenv("FERROUS_TOKEN", asyncio.run(ids.api_token(viewer)))
    done = ferrous("cancel", "some-build", "--url", server_url)
    assert done.exit_code == 1
    assert "vic (viewer) may not do this: it needs 'builds:cancel' (HTTP 403)" in done.stderr


def test_the_token_sent_is_the_option_then_the_environment_then_the_stored_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = "https://ci.example.com"
    assert Client(url).headers == {}
    credentials.store(url, {"token": "fpt_stored", "token_id": "t-1"})
    assert Client(url).headers == {"Authorization": "Bearer fpt_stored"}
    assert Client("https://elsewhere.example").headers == {}  # a token for its server only
    assert Client(None).base == url  # the last server logged in to
    monkeypatch.setenv("FERROUS_TOKEN", "fpt_env")
    assert Client(url).headers == {"Authorization": "Bearer fpt_env"}
    assert Client(url, token="fpt_given").headers == {"Authorization": "Bearer fpt_given"}
    assert Client(url, signed_in=False).headers == {}


def test_the_root_token_option_beats_the_environment(
    server_url: str, ids: Identities, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FERROUS_TOKEN", "fpt_not_this_one")
    ada = next(user for user in ids.store.users.values() if user.username == "ada")
    token = asyncio.run(ids.api_token(ada))
    done = ferrous("--token", token, "project", "list", "--url", server_url)
    assert done.exit_code == 0, done.output


def test_an_unreadable_file_is_reported_by_login_and_ignored_by_commands(
    server_url: str, config_home: Path
) -> None:
    path = config_home / "ferrous" / "credentials.json"
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    done = ferrous("builds", "--url", server_url)
    assert "not signed in" in done.stderr
    refused = login(server_url)
    assert refused.exit_code == 1
    assert f"cannot read {path}" in refused.stderr
    assert path.read_text() == "{not json"  # left for the person to look at
