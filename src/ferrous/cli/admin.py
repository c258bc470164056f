"""``ferrous admin``: users and API tokens, straight on the server's database.

It needs no running server, only the same settings (``FERROUS_DATABASE_URL``, or the
SQLite file of ``--data-dir``): it is how an operator gets back in after losing the admin
password. Secrets (a generated password, a new token) are printed alone on stdout, the
rest on stderr, so ``TOKEN=$(ferrous admin token create ...)`` works; a password is read
from stdin with ``--password-stdin`` (``printf %s "$PW" | ferrous admin user set-password
ada --password-stdin``), never from the command line where ``ps`` would show it.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from ferrous.cli.client import fail, print_json, print_table

if TYPE_CHECKING:
    from ferrous.application.administration import Administration

T = TypeVar("T")
USER_COLUMNS = ["id", "username", "role", "active", "email", "created_at"]

DataDirOption = Annotated[
    Path | None, typer.Option("--data-dir", help="The server's data dir (SQLite, keys).")
]
PasswordStdinOption = Annotated[
    bool,
    typer.Option(
        "--password-stdin", help="Read the password from stdin. Default: generate and print one."
    ),
]

admin_app = typer.Typer(
    help="Manage users and API tokens on the server's database (no server needed).",
    no_args_is_help=True,
)
user_app = typer.Typer(help="People: create, list, change.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens.", no_args_is_help=True)
admin_app.add_typer(user_app, name="user")
admin_app.add_typer(token_app, name="token")


def _run(data_dir: Path | None, work: Callable[[Administration], Awaitable[T]]) -> T:
    import asyncio

    from ferrous.application.administration import administration
    from ferrous.domain.errors import FerrousError
    from ferrous.infrastructure.logging import configure_logging
    from ferrous.infrastructure.settings import load_settings

    async def main() -> T:
        settings = load_settings(data_dir=data_dir)
        configure_logging(settings.log_level, settings.log_format)
        async with administration(settings) as admin:
            return await work(admin)

    try:
        return asyncio.run(main())
    except FerrousError as exc:
        raise fail(exc.message) from exc


def _password(from_stdin: bool) -> str | None:
    if not from_stdin:
        return None
    password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise fail("no password on stdin")
    return password


def _show_password(generated: str | None, what: str) -> None:
    if generated is not None:
        sys.stderr.write(f"{what}; the generated password, shown this once:\n")
        sys.stdout.write(generated + "\n")
    else:
        sys.stderr.write(f"{what}\n")


async def _update(admin: Administration, username: str, **changes: Any) -> Any:
    from ferrous.application.commands import UpdateUser

    user = await admin.identities.get_user(username)
    return await admin.bus.handle(UpdateUser(user_id=user.id, **changes))


@user_app.command("create")
def user_create(
    username: Annotated[str, typer.Argument(help="1 to 64 of a-z, 0-9, '.', '_', '-'.")],
    role: Annotated[str, typer.Option(help="admin, developer or viewer.")] = "viewer",
    email: Annotated[str | None, typer.Option(help="Their email address.")] = None,
    password_stdin: PasswordStdinOption = False,
    data_dir: DataDirOption = None,
) -> None:
    """Add a person."""
    from ferrous.application.commands import CreateUser

    password = _password(password_stdin)

    async def work(admin: Administration) -> Any:
        return await admin.bus.handle(
            CreateUser(username=username, role=role, email=email, password=password)
        )

    user, generated = _run(data_dir, work)
    _show_password(generated, f"user {user.username} created ({user.role.value})")


@user_app.command("list")
def user_list(
    data_dir: DataDirOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Every user, by username."""
    import dataclasses

    async def work(admin: Administration) -> Any:
        return await admin.identities.list_users()

    rows = [dataclasses.asdict(user) for user in _run(data_dir, work)]
    if as_json:
        print_json([{**row, **_iso(row)} for row in rows])
    else:
        print_table(rows, USER_COLUMNS)


def _iso(row: dict[str, Any]) -> dict[str, str]:
    return {key: value.isoformat() for key, value in row.items() if hasattr(value, "isoformat")}


@user_app.command("set-password")
def user_set_password(
    username: str, password_stdin: PasswordStdinOption = False, data_dir: DataDirOption = None
) -> None:
    """Give a person a new password (their sessions end)."""
    from ferrous.application.use_cases.manage_users import generated_password

    password = _password(password_stdin)
    new = password if password is not None else generated_password()

    async def work(admin: Administration) -> Any:
        return await _update(admin, username, password=new)

    user = _run(data_dir, work)
    _show_password(None if password is not None else new, f"password of {user.username} set")


@user_app.command("set-role")
def user_set_role(
    username: str,
    role: Annotated[str, typer.Argument(help="admin, developer or viewer.")],
    data_dir: DataDirOption = None,
) -> None:
    """Change a person's role (the last active admin stays one)."""

    async def work(admin: Administration) -> Any:
        return await _update(admin, username, role=role)

    user = _run(data_dir, work)
    sys.stdout.write(f"{user.username} is now {user.role.value}\n")


@user_app.command("disable")
def user_disable(username: str, data_dir: DataDirOption = None) -> None:
    """Stop every way in for a person: password, sessions, personal tokens."""

    async def work(admin: Administration) -> Any:
        return await _update(admin, username, active=False)

    sys.stdout.write(f"{_run(data_dir, work).username} disabled\n")


@user_app.command("enable")
def user_enable(username: str, data_dir: DataDirOption = None) -> None:
    """Let a disabled person sign in again (their old sessions stay ended)."""

    async def work(admin: Administration) -> Any:
        return await _update(admin, username, active=True)

    sys.stdout.write(f"{_run(data_dir, work).username} enabled\n")


@token_app.command("create")
def token_create(
    user: Annotated[str, typer.Option("--user", help="Whose token (a service token: an admin).")],
    name: Annotated[str, typer.Option("--name", help="What it is for.")],
    service: Annotated[
        bool, typer.Option("--service", help="A service token, with --scope permissions only.")
    ] = False,
    scope: Annotated[
        list[str] | None, typer.Option("--scope", help="A service token's permission; repeat.")
    ] = None,
    expires_in: Annotated[
        str | None, typer.Option("--expires-in", help="30d, 12h, ... Default: never expires.")
    ] = None,
    data_dir: DataDirOption = None,
) -> None:
    """Make an API token and print it; it is not shown again."""
    from datetime import timedelta

    from ferrous.application.commands import CreateApiToken
    from ferrous.domain.access import Principal, PrincipalKind, Role
    from ferrous.domain.api_token import ApiTokenKind
    from ferrous.pipeline_config.checks import parse_duration

    lifetime = None
    if expires_in is not None:
        seconds = parse_duration(expires_in)
        if not seconds or seconds <= 0:
            raise fail(f"--expires-in {expires_in!r} is not a duration such as 30d or 12h")
        lifetime = timedelta(seconds=seconds)

    async def work(admin: Administration) -> Any:
        owner = await admin.identities.get_user(user)
        if not owner.active:
            raise fail(f"{owner.username} is disabled")
        actor = Principal(
            kind=PrincipalKind.USER, id=owner.id, name=owner.username, role=Role(owner.role)
        )
        return await admin.bus.handle(
            CreateApiToken(
                actor=actor,
                name=name,
                kind=ApiTokenKind.SERVICE if service else ApiTokenKind.PERSONAL,
                scopes=frozenset(scope or ()),
                expires_in=lifetime,
            )
        )

    token, plain = _run(data_dir, work)
    expiry = f"expires {token.expires_at.isoformat()}" if token.expires_at else "never expires"
    sys.stderr.write(
        f"{token.kind.value} token {token.id} created ({expiry}); copy it now, it is not "
        "shown again:\n"
    )
    sys.stdout.write(plain + "\n")
