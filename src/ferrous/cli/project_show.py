"""``ferrous project show``: one project's settings, as ``GET /projects/{project}`` tells.

Secrets are never shown (the API never answers them): only whether each is set.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from ferrous.cli.client import Client, print_json
from ferrous.cli.remote import JsonOption, UrlOption, projects_app


def _yes_no(value: Any) -> str:
    return "yes" if value else "no"


def _forge(found: dict[str, Any]) -> str:
    kind = str(found.get("forge") or "none")
    if kind == "none":
        return kind
    token = "token set" if found.get("forge_token_set") else "no token"
    return f"{kind} {found.get('forge_repo')} at {found.get('forge_api_url')} ({token})"


def lines(found: dict[str, Any]) -> list[tuple[str, str]]:
    credentials = found.get("credentials") or {}
    expire_in = found.get("artifacts_expire_in")
    return [
        ("name", str(found["name"])),
        ("id", str(found["id"])),
        ("repository", str(found["repo_url"])),
        ("default branch", str(found["default_branch"])),
        ("credentials", str(credentials.get("kind", "none"))),
        ("webhook secret", "set" if found.get("webhook_secret_set") else "not set"),
        ("forge", _forge(found)),
        ("artifacts expire in", expire_in if expire_in else "the server's default"),
        ("keep latest artifacts", _yes_no(found.get("keep_latest_artifacts", True))),
        ("created", str(found["created_at"])),
    ]


@projects_app.command("show")
def project_show(
    project: Annotated[str, typer.Argument(help="Project name or id.")],
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show a project's settings (never its secrets)."""
    found = Client(url).get(f"/projects/{project}")
    if as_json:
        print_json(found)
        return
    shown = lines(found)
    width = max(len(label) for label, _ in shown) + 1
    for label, value in shown:
        sys.stdout.write(f"{(label + ':').ljust(width)} {value}\n")
