"""``ferrous agent-token``: agent registration tokens, for admins.

``create`` prints the token alone on stdout (the rest goes to stderr), so a script can take
it with ``TOKEN=$(ferrous agent-token create --max-uses 1)`` and hand it to ``ferrous agent
--token``; it is never shown again. ``list`` shows how each was used, ``revoke`` ends one.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from ferrous.cli.client import Client, print_json, print_table
from ferrous.cli.remote import JsonOption, UrlOption

PATH = "/agent-registration-tokens"
COLUMNS = ["id", "description", "status", "uses", "max_uses", "expires_at", "last_used_at"]

DescriptionOption = Annotated[str, typer.Option(help="What or who it is for.")]
ExpiresInOption = Annotated[
    str | None,
    typer.Option("--expires-in", help="Usable for this long: 7d, 12h, 1h 30m. Default: no expiry."),
]


def token_body(description: str, expires_in: str | None) -> dict[str, Any]:
    """The creation body every kind of token shares (the server parses the duration)."""
    body: dict[str, Any] = {"description": description}
    if expires_in is not None:
        body["expires_in"] = expires_in
    return body


agent_tokens_app = typer.Typer(
    help="Agent registration tokens (admin): create one for each machine, list, revoke.",
    no_args_is_help=True,
)


@agent_tokens_app.command("create")
def token_create(
    description: DescriptionOption = "",
    expires_in: ExpiresInOption = None,
    max_uses: Annotated[
        int | None,
        typer.Option("--max-uses", min=1, help="How many agents may register. Default: any."),
    ] = None,
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create a token for `ferrous agent --token`; it is shown this once only."""
    body = token_body(description, expires_in)
    if max_uses is not None:
        body["max_uses"] = max_uses
    created = Client(url).post(PATH, json=body)
    if as_json:
        print_json(created)
        return
    limits = [
        f"expires {created['expires_at']}" if created["expires_at"] else "never expires",
        f"{created['max_uses']} use(s)" if created["max_uses"] else "unlimited uses",
    ]
    sys.stderr.write(
        f"agent registration token {created['id']} created ({', '.join(limits)}); "
        "copy it now, it is not shown again:\n"
    )
    sys.stdout.write(created["token"] + "\n")


@agent_tokens_app.command("list")
def token_list(url: UrlOption = None, as_json: JsonOption = False) -> None:
    """List the tokens, newest first, with their status and uses (never the secrets)."""
    items = Client(url).get(PATH)["items"]
    if as_json:
        print_json(items)
    else:
        print_table(items, COLUMNS)


@agent_tokens_app.command("revoke")
def token_revoke(
    token_id: Annotated[str, typer.Argument(metavar="ID", help="The token's id (see list).")],
    url: UrlOption = None,
) -> None:
    """Refuse every later registration with the token; registered agents keep working."""
    Client(url).delete(f"{PATH}/{token_id}")
    sys.stdout.write(f"agent registration token {token_id} revoked\n")
