"""``ferrous project notify``: who hears of a project's builds, and what was sent.

``add`` makes a rule (``--channel webhook|slack|email``, the URL or addresses, ``--on``
outcomes, ``--branch`` globs, ``--secret`` to sign webhook bodies); ``list`` shows the rules,
``remove`` ends one, ``deliveries`` shows a rule's delivery log and ``test`` queues a test
delivery.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from ferrous.cli.client import Client, print_json, print_table
from ferrous.cli.remote import JsonOption, UrlOption, projects_app

RULE_COLUMNS = ["id", "name", "channel", "target", "on", "branches", "enabled"]
DELIVERY_COLUMNS = [
    "id",
    "event",
    "status",
    "attempts",
    "response_status",
    "last_error",
    "created_at",
    "delivered_at",
]
ProjectArgument = Annotated[str, typer.Argument(help="Project name or id.")]
RuleArgument = Annotated[str, typer.Argument(metavar="RULE", help="The rule's id (see list).")]

notify_app = typer.Typer(
    help="Notification rules: webhooks, Slack and email when builds fail or recover.",
    no_args_is_help=True,
)
projects_app.add_typer(notify_app, name="notify")


def _path(project: str) -> str:
    return f"/projects/{project}/notifications"


def _row(rule: dict[str, Any]) -> dict[str, Any]:
    return {**rule, "on": ",".join(rule["on"]), "branches": ",".join(rule["branches"]) or "*"}


@notify_app.command("add")
def notify_add(
    project: ProjectArgument,
    target: Annotated[
        str, typer.Argument(help="The URL (webhook, slack) or comma-separated addresses.")
    ],
    channel: Annotated[
        str, typer.Option("--channel", "-c", help="webhook, slack or email.")
    ] = "webhook",
    name: Annotated[str | None, typer.Option(help="Defaults to the channel's name.")] = None,
    on: Annotated[
        list[str] | None,
        typer.Option(
            "--on",
            help="failure, recovery, success, always (repeat; default: failure and recovery).",
        ),
    ] = None,
    branch: Annotated[
        list[str] | None, typer.Option("--branch", "-b", help="A ref glob (repeat); default all.")
    ] = None,
    secret: Annotated[
        str | None,
        typer.Option(
            help="Webhooks: sign bodies with it (X-Ferrous-Signature-256).",
            envvar="FERROUS_NOTIFY_SECRET",
        ),
    ] = None,
    disabled: Annotated[bool, typer.Option("--disabled", help="Add it switched off.")] = False,
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Add a notification rule to the project."""
    body: dict[str, Any] = {
        "name": name or channel,
        "channel": channel,
        "target": target,
        "branches": branch or [],
        "enabled": not disabled,
    }
    if on:
        body["on"] = on
    if secret:
        body["secret"] = secret
    created = Client(url).post(_path(project), json=body)
    if as_json:
        print_json(created)
    else:
        sys.stdout.write(f"notification rule {created['id']} added\n")


@notify_app.command("list")
def notify_list(
    project: ProjectArgument, url: UrlOption = None, as_json: JsonOption = False
) -> None:
    """List the project's rules, oldest first."""
    items = Client(url).get(_path(project))["items"]
    if as_json:
        print_json(items)
    else:
        print_table([_row(rule) for rule in items], RULE_COLUMNS)


@notify_app.command("remove")
def notify_remove(project: ProjectArgument, rule_id: RuleArgument, url: UrlOption = None) -> None:
    """Remove a rule; its queued deliveries and its log go with it."""
    Client(url).delete(f"{_path(project)}/{rule_id}")
    sys.stdout.write(f"notification rule {rule_id} removed\n")


@notify_app.command("deliveries")
def notify_deliveries(
    project: ProjectArgument,
    rule_id: RuleArgument,
    limit: Annotated[int, typer.Option(min=1, max=200)] = 50,
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show a rule's delivery log, newest first."""
    items = Client(url).get(f"{_path(project)}/{rule_id}/deliveries", params={"limit": limit})[
        "items"
    ]
    if as_json:
        print_json(items)
    else:
        print_table(items, DELIVERY_COLUMNS)


@notify_app.command("test")
def notify_test(project: ProjectArgument, rule_id: RuleArgument, url: UrlOption = None) -> None:
    """Queue a test delivery (event `ping`); see its outcome with `deliveries`."""
    queued = Client(url).post(f"{_path(project)}/{rule_id}/test")
    sys.stdout.write(f"test delivery {queued['id']} queued\n")
