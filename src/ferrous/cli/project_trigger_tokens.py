"""``ferrous project trigger-token``: a project's pipeline trigger tokens.

``create`` prints the token alone on stdout (the rest, with a ``curl`` line to start a
build, goes to stderr), so a script can take it with ``TOKEN=$(ferrous project
trigger-token create app)``; it is never shown again. ``list`` shows when each was last
used, ``revoke`` ends one.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from ferrous.cli.agent_tokens import DescriptionOption, ExpiresInOption, token_body
from ferrous.cli.client import Client, print_json, print_table
from ferrous.cli.remote import JsonOption, UrlOption, projects_app

COLUMNS = ["id", "description", "status", "created_at", "last_used_at", "expires_at"]
ProjectArgument = Annotated[str, typer.Argument(help="Project name or id.")]

trigger_tokens_app = typer.Typer(
    help="Pipeline trigger tokens: let other systems start builds of a project.",
    no_args_is_help=True,
)
projects_app.add_typer(trigger_tokens_app, name="trigger-token")


def _path(project: str) -> str:
    return f"/projects/{project}/trigger-tokens"


@trigger_tokens_app.command("create")
def token_create(
    project: ProjectArgument,
    description: DescriptionOption = "",
    expires_in: ExpiresInOption = None,
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create a token that starts builds of the project; it is shown this once only."""
    client = Client(url)
    created = client.post(_path(project), json=token_body(description, expires_in))
    if as_json:
        print_json(created)
        return
    expiry = f"expires {created['expires_at']}" if created["expires_at"] else "never expires"
    sys.stderr.write(
        f"trigger token {created['id']} created ({expiry}); copy it now, it is not shown "
        f"again. Start a build with:\n  curl -X POST --fail -F token=$TOKEN -F ref=main "
        f"{client.base}/api/v1/projects/{project}/trigger/pipeline\n"
    )
    sys.stdout.write(created["token"] + "\n")


@trigger_tokens_app.command("list")
def token_list(
    project: ProjectArgument, url: UrlOption = None, as_json: JsonOption = False
) -> None:
    """List the project's tokens, newest first, with their status (never the secrets)."""
    items = Client(url).get(_path(project))["items"]
    if as_json:
        print_json(items)
    else:
        print_table(items, COLUMNS)


@trigger_tokens_app.command("revoke")
def token_revoke(
    project: ProjectArgument,
    token_id: Annotated[str, typer.Argument(metavar="ID", help="The token's id (see list).")],
    url: UrlOption = None,
) -> None:
    """Refuse every later trigger with the token; the builds it started stay."""
    Client(url).delete(f"{_path(project)}/{token_id}")
    sys.stdout.write(f"trigger token {token_id} revoked\n")
