"""``ferrous project secret``: a project's secret variables.

A value never goes on the command line (shell history, ``ps``): ``set`` reads it from
standard input with ``--value-stdin`` (one trailing newline removed, as ``echo`` adds one),
or else asks for it without echoing. ``list`` shows names and flags; no command can show a
value again.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from ferrous.cli.client import Client, fail, print_json, print_table
from ferrous.cli.remote import JsonOption, UrlOption, projects_app

COLUMNS = ["name", "protected", "masked", "updated_at", "created_by"]
ProjectArgument = Annotated[str, typer.Argument(help="Project name or id.")]
NameArgument = Annotated[
    str, typer.Argument(help="The variable's name, as the job's shell sees it (DEPLOY_KEY).")
]
ValueStdinOption = Annotated[
    bool, typer.Option("--value-stdin", help="Read the value from standard input.")
]
ProtectedOption = Annotated[
    bool,
    typer.Option("--protected", help="Only for jobs of protected refs (tags, default branch)."),
]
NoMaskOption = Annotated[
    bool,
    typer.Option("--no-mask", help="Do not mask it in job logs (needed for multi-line values)."),
]

secrets_app = typer.Typer(
    help="Secret variables: values a project's jobs get as environment variables.",
    no_args_is_help=True,
)
projects_app.add_typer(secrets_app, name="secret")


def read_value(from_stdin: bool) -> str:
    """The value from standard input, or asked for without echo on a terminal."""
    if from_stdin:
        value = sys.stdin.read()
        return value.removesuffix("\n").removesuffix("\r")
    if not sys.stdin.isatty():
        raise fail("give the value on standard input with --value-stdin")
    return str(typer.prompt("Value", hide_input=True, confirmation_prompt=True))


def set_secret(
    path: str, name: str, value: str, protected: bool, masked: bool, url: str | None
) -> Any:
    body = {"value": value, "protected": protected, "masked": masked}
    return Client(url).request("PUT", f"{path}/{name}", json=body)


def show(saved: Any, as_json: bool, where: str) -> None:
    if as_json:
        print_json(saved)
        return
    flags = [flag for flag in ("protected", "masked") if saved[flag]]
    described = f" ({', '.join(flags)})" if flags else ""
    sys.stdout.write(f"secret {saved['name']} of {where} saved{described}\n")


def _path(project: str) -> str:
    return f"/projects/{project}/secrets"


@secrets_app.command("set")
def secret_set(
    project: ProjectArgument,
    name: NameArgument,
    value_stdin: ValueStdinOption = False,
    protected: ProtectedOption = False,
    no_mask: NoMaskOption = False,
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create the project's secret variable, or replace its value and flags."""
    value = read_value(value_stdin)
    saved = set_secret(_path(project), name, value, protected, not no_mask, url)
    show(saved, as_json, project)


@secrets_app.command("list")
def secret_list(
    project: ProjectArgument, url: UrlOption = None, as_json: JsonOption = False
) -> None:
    """List the project's secret variables by name (never their values)."""
    items = Client(url).get(_path(project))["items"]
    if as_json:
        print_json(items)
    else:
        print_table(items, COLUMNS)


@secrets_app.command("delete")
def secret_delete(project: ProjectArgument, name: NameArgument, url: UrlOption = None) -> None:
    """Delete the project's secret variable: later jobs no longer get it."""
    Client(url).delete(f"{_path(project)}/{name}")
    sys.stdout.write(f"secret {name} of {project} deleted\n")
