"""``ferrous schedule ...``: a project's pipeline run by cron, managed from the command line.

Tables for people, ``--json`` for scripts, like the other client commands. Imports beyond
Typer happen inside the commands, so ``ferrous --help`` stays quick.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

UrlOption = Annotated[str | None, typer.Option("--url", help="Server URL (or FERROUS_URL).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
VarOption = Annotated[
    list[str] | None,
    typer.Option("--var", help="KEY=VALUE, repeatable (given on update: replaces them all)."),
]
CronOption = Annotated[
    str | None,
    typer.Option(
        help='Five fields: minute hour day-of-month month day-of-week, e.g. "0 3 * * *"; '
        "or @hourly, @daily, @weekly, @monthly, @yearly."
    ),
]
TimezoneOption = Annotated[
    str | None, typer.Option(help="IANA time zone, e.g. Europe/Paris (default UTC).")
]
RefOption = Annotated[
    str | None, typer.Option(help="Branch or tag to build (default: the default branch).")
]
DescriptionOption = Annotated[str | None, typer.Option(help="What it is for.")]
COLUMNS = ["id", "description", "cron", "timezone", "ref", "active", "next_run_at"]

schedules_app = typer.Typer(
    help="Schedules: run a project's pipeline by cron.", no_args_is_help=True
)


def _variables(var: list[str] | None) -> dict[str, str]:
    from ferrous.cli.checkout import parse_assignments

    return parse_assignments(var or [], "--var")


def _show(schedule: dict[str, Any], as_json: bool, verb: str) -> None:
    from ferrous.cli.client import print_json

    if as_json:
        print_json(schedule)
        return
    when = schedule["next_run_at"] or "never (inactive)"
    sys.stdout.write(
        f"schedule {schedule['id']} {verb}: {schedule['cron']} ({schedule['timezone']}), "
        f"next run {when}\n"
    )


@schedules_app.command("list")
def schedule_list(
    project: Annotated[str, typer.Argument(help="Project name or id.")],
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """List a project's schedules."""
    from ferrous.cli.client import Client, print_json, print_table

    items = Client(url).get(f"/projects/{project}/schedules")["items"]
    if as_json:
        print_json(items)
    else:
        print_table(items, COLUMNS)


@schedules_app.command("add")
def schedule_add(
    project: Annotated[str, typer.Argument(help="Project name or id.")],
    cron: CronOption = None,
    timezone: TimezoneOption = None,
    ref: RefOption = None,
    var: VarOption = None,
    description: DescriptionOption = None,
    pipeline: Annotated[str, typer.Option(help="The project's pipeline.")] = "default",
    inactive: Annotated[bool, typer.Option("--inactive", help="Create it switched off.")] = False,
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Run a project's pipeline by cron."""
    from ferrous.cli.client import Client, fail

    if not cron:
        raise fail('give --cron, e.g. --cron "0 3 * * *"')
    body: dict[str, Any] = {
        "cron": cron,
        "pipeline": pipeline,
        "variables": _variables(var),
        "active": not inactive,
    }
    optional = {"timezone": timezone, "ref": ref, "description": description}
    body.update({key: value for key, value in optional.items() if value is not None})
    _show(Client(url).post(f"/projects/{project}/schedules", json=body), as_json, "added")


@schedules_app.command("update")
def schedule_update(
    schedule: Annotated[str, typer.Argument(help="Schedule id.")],
    cron: CronOption = None,
    timezone: TimezoneOption = None,
    ref: RefOption = None,
    default_branch: Annotated[
        bool, typer.Option("--default-branch", help="Build the default branch again.")
    ] = False,
    var: VarOption = None,
    no_vars: Annotated[bool, typer.Option("--no-vars", help="Remove every variable.")] = False,
    description: DescriptionOption = None,
    active: Annotated[
        bool | None, typer.Option("--active/--inactive", help="Switch it on or off.")
    ] = None,
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Change a schedule: only what is given changes."""
    from ferrous.cli.client import Client, fail

    if ref and default_branch:
        raise fail("give --ref or --default-branch, not both")
    if var and no_vars:
        raise fail("give --var or --no-vars, not both")
    body: dict[str, Any] = {}
    optional = {"cron": cron, "timezone": timezone, "description": description, "active": active}
    body.update({key: value for key, value in optional.items() if value is not None})
    if ref or default_branch:
        body["ref"] = ref  # None: back to the default branch
    if var or no_vars:
        body["variables"] = _variables(var)
    if not body:
        raise fail("nothing to change: give --cron, --timezone, --ref, --var, ...")
    result = Client(url).request("PATCH", f"/schedules/{schedule}", json=body)
    _show(result, as_json, "updated")


@schedules_app.command("delete")
def schedule_delete(
    schedule: Annotated[str, typer.Argument(help="Schedule id.")],
    url: UrlOption = None,
) -> None:
    """Delete a schedule (its builds stay)."""
    from ferrous.cli.client import Client

    Client(url).request("DELETE", f"/schedules/{schedule}")
    sys.stdout.write(f"schedule {schedule} deleted\n")


@schedules_app.command("run")
def schedule_run(
    schedule: Annotated[str, typer.Argument(help="Schedule id.")],
    wait: Annotated[bool, typer.Option(help="Follow the build and exit with its result.")] = False,
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Run a schedule's pipeline now; its next run stays as it is."""
    from ferrous.cli.client import Client, print_json
    from ferrous.cli.remote import follow_build

    client = Client(url)
    build = client.post(f"/schedules/{schedule}/run")
    if not wait:
        if as_json:
            print_json(build)
        else:
            sys.stdout.write(f"build #{build['number']} {build['status']} ({build['id']})\n")
        return
    final = follow_build(client, build["id"], quiet=as_json)
    if as_json:
        print_json(final)
    raise typer.Exit(0 if final["status"] == "success" else 1)
