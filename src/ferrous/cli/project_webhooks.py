"""``ferrous project webhook`` and ``ferrous project deliveries``: connecting a forge.

The secret is read from a file or generated here (never typed on a command line, where the
shell history and ``ps`` would keep it) and shown once with the URLs to paste into the
forge's webhook settings.
"""

from __future__ import annotations

import secrets
import sys
from pathlib import Path
from typing import Annotated

import typer

from ferrous.cli.client import Client, print_json, print_table
from ferrous.cli.remote import JsonOption, UrlOption, projects_app

FORGES = ("github", "gitlab", "gitea", "forgejo", "gogs", "bitbucket")


@projects_app.command("webhook")
def project_webhook(
    project: Annotated[str, typer.Argument(help="Project name or id.")],
    secret_file: Annotated[
        Path | None,
        typer.Option(
            exists=True,
            dir_okay=False,
            help="File holding the secret the forge signs with; default: a new random one.",
        ),
    ] = None,
    remove: Annotated[
        bool, typer.Option("--remove", help="Remove the secret: deliveries are refused.")
    ] = False,
    url: UrlOption = None,
) -> None:
    """Set the project's webhook secret and print the hook URLs for each forge."""
    client = Client(url)
    if remove:
        client.request("PATCH", f"/projects/{project}", json={"webhook_secret": ""})
        sys.stdout.write(f"webhook secret of {project} removed: deliveries are refused\n")
        return
    secret = secret_file.read_text().strip() if secret_file else secrets.token_urlsafe(32)
    found = client.request("PATCH", f"/projects/{project}", json={"webhook_secret": secret})
    if secret_file is None:
        sys.stdout.write(f"secret: {secret}\n(shown once: paste it into the forge's webhook)\n")
    base = client.base.rstrip("/")
    for forge in FORGES:
        sys.stdout.write(f"{forge:<10} {base}/api/v1/hooks/{forge}/{found['name']}\n")


@projects_app.command("deliveries")
def project_deliveries(
    project: Annotated[str, typer.Argument(help="Project name or id.")],
    limit: Annotated[int, typer.Option(min=1, max=500, help="How many, newest first.")] = 20,
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """The project's last webhook deliveries and what became of each."""
    items = Client(url).get(f"/projects/{project}/webhook-deliveries", params={"limit": limit})[
        "items"
    ]
    if as_json:
        print_json(items)
    else:
        print_table(items, ["received_at", "forge", "event", "outcome", "message", "delivery_id"])
