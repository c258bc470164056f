"""``ferrous secrets``: the instance's secret variables, and the key that seals every secret.

``set``, ``list`` and ``delete`` talk to a server, as ``ferrous project secret`` does, for the
variables every project's jobs get. ``rotate-key`` and ``reseal`` work on the server's own
settings and database (``FERROUS_*``, ``--data-dir``), not through the API:

- ``rotate-key`` puts a new key in front of ``<data dir>/secret.key``; the old keys stay, so
  what they sealed still opens (running servers seal with the key they started with until
  they restart);
- ``reseal`` seals every stored secret (secret variables, repository credentials, webhook
  secrets, forge tokens) again with the current key, in one transaction. After it, the old
  keys can be removed from the key file by hand.

With ``FERROUS_SECRET_KEY`` the keys are not in a file: put a new key first in the setting of
every server (``rotate-key`` prints one to use), then run ``reseal``.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Annotated

import typer

from ferrous.cli.client import Client, fail, print_json, print_table
from ferrous.cli.project_secrets import (
    COLUMNS,
    NameArgument,
    NoMaskOption,
    ProtectedOption,
    ValueStdinOption,
    read_value,
    set_secret,
    show,
)
from ferrous.cli.remote import JsonOption, UrlOption

DataDirOption = Annotated[
    Path | None, typer.Option("--data-dir", help="The server's data dir (or FERROUS_DATA_DIR).")
]

secrets_app = typer.Typer(
    help="Instance secret variables (every project's), and the key sealing all secrets.",
    no_args_is_help=True,
)


@secrets_app.command("set")
def instance_set(
    name: NameArgument,
    value_stdin: ValueStdinOption = False,
    protected: ProtectedOption = False,
    no_mask: NoMaskOption = False,
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create an instance secret variable, or replace its value and flags."""
    value = read_value(value_stdin)
    show(set_secret("/secrets", name, value, protected, not no_mask, url), as_json, "the instance")


@secrets_app.command("list")
def instance_list(url: UrlOption = None, as_json: JsonOption = False) -> None:
    """List the instance's secret variables by name (never their values)."""
    items = Client(url).get("/secrets")["items"]
    if as_json:
        print_json(items)
    else:
        print_table(items, COLUMNS)


@secrets_app.command("delete")
def instance_delete(name: NameArgument, url: UrlOption = None) -> None:
    """Delete an instance secret variable."""
    Client(url).delete(f"/secrets/{name}")
    sys.stdout.write(f"secret {name} of the instance deleted\n")


@secrets_app.command("rotate-key")
def rotate_key(data_dir: DataDirOption = None) -> None:
    """Put a new key in front of the key file; then run `ferrous secrets reseal`."""
    from ferrous.domain.errors import FerrousError
    from ferrous.infrastructure.security.secret_box import generate_key, rotate_key_file
    from ferrous.infrastructure.settings import load_settings

    settings = load_settings(data_dir=data_dir)
    if settings.secret_key:
        sys.stderr.write(
            "the keys come from FERROUS_SECRET_KEY, not from a file: put this new key first "
            "in it on every server, then run `ferrous secrets reseal`:\n"
        )
        sys.stdout.write(generate_key() + "\n")
        return
    try:
        kid = rotate_key_file(settings.data_dir)
    except FerrousError as exc:
        raise fail(exc.message) from exc
    sys.stdout.write(
        f"new secret key {kid} in {settings.data_dir / 'secret.key'}; restart the servers, "
        "then run `ferrous secrets reseal` to seal the stored secrets with it\n"
    )


@secrets_app.command("reseal")
def reseal(data_dir: DataDirOption = None) -> None:
    """Seal every stored secret again with the current key (after `rotate-key`)."""
    from ferrous.application.administration import reseal_stored_secrets
    from ferrous.domain.errors import FerrousError
    from ferrous.infrastructure.settings import load_settings

    settings = load_settings(data_dir=data_dir)
    try:
        count = asyncio.run(reseal_stored_secrets(settings))
    except FerrousError as exc:
        raise fail(exc.message) from exc
    sys.stdout.write(f"{count} secret value(s) sealed with the current key\n")
