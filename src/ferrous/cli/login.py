"""``ferrous login`` and ``ferrous logout``: a personal API token for this machine.

Login signs in with a username and password, makes a personal API token named
``ferrous-cli@<hostname>`` with the short-lived access token, ends that sign-in session, and
stores the API token (``cli.credentials``): it lasts until ``logout`` or a revocation, and
shows in ``GET /api/v1/tokens`` where it can be revoked from anywhere. Signing in to a
server again replaces (and revokes) the token stored for it. The password is read from
stdin with ``--password-stdin`` (``printf %s "$PW" | ferrous login --password-stdin``), else
asked for without echo on a terminal, never taken from the command line.
"""

from __future__ import annotations

import socket
import sys
from typing import Annotated

import typer

from ferrous.cli import credentials
from ferrous.cli.client import Client, fail, server_url

ServerOption = Annotated[
    str | None,
    typer.Option(
        "--server", "--url", help="Server URL (or FERROUS_URL, or the last one logged in to)."
    ),
]


def _username(given: str | None) -> str:
    if given:
        return given
    if not sys.stdin.isatty():
        raise fail("give --username (no terminal to ask on)")
    name: str = typer.prompt("Username")
    return name.strip()


def _password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise fail("no password on stdin")
        return password
    if not sys.stdin.isatty():
        raise fail("give --password-stdin (no terminal to ask on)")
    asked: str = typer.prompt("Password", hide_input=True)
    return asked


def login_command(
    server: ServerOption = None,
    username: Annotated[str | None, typer.Option(help="Your username (asked if unset).")] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin.")
    ] = False,
) -> None:
    """Sign in and keep a personal API token for this server."""
    base = server_url(server)
    name = _username(username)
    password = _password(password_stdin)
    try:
        previous = credentials.stored(base)
    except ValueError as exc:
        raise fail(str(exc)) from exc
    anonymous = Client(base, signed_in=False)
    signed = anonymous.post("/auth/login", json={"username": name, "password": password})
    session = Client(base, token=signed["access_token"])
    created = session.post("/tokens", json={"name": f"ferrous-cli@{socket.gethostname()}"})
    session.post("/auth/logout")  # the API token is what stays; the session is done
    entry = {"token": created["token"], "token_id": created["id"], "username": name}
    try:
        path = credentials.store(base, entry)
    except (OSError, ValueError) as exc:
        raise fail(f"cannot store the token: {exc}") from exc
    if previous is not None and previous.get("token_id"):
        _revoke(Client(base, token=created["token"]), previous["token_id"])
    sys.stderr.write(f"logged in to {base} as {name}; token {created['name']} kept in {path}\n")


def logout_command(server: ServerOption = None) -> None:
    """Revoke the token stored for this server and forget it."""
    base = server_url(server)
    try:
        entry = credentials.stored(base)
        if entry is None:
            raise fail(f"not logged in to {base}")
        _revoke(Client(base, token=entry["token"]), entry.get("token_id"))
        credentials.forget(base)
    except (OSError, ValueError) as exc:
        raise fail(str(exc)) from exc
    sys.stderr.write(f"logged out of {base}\n")


def _revoke(client: Client, token_id: str | None) -> None:
    """Revoke a stored token; one revoked or expired already is fine."""
    import httpx

    if not token_id:
        return
    try:
        response = client.http.delete(f"/tokens/{token_id}")
    except httpx.TransportError as exc:
        raise fail(f"cannot reach the server at {client.base}: {exc}") from exc
    if response.status_code not in (204, 401, 404):
        raise fail(f"could not revoke the token {token_id} (HTTP {response.status_code})")
