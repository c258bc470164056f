"""``ferrous project update``: change a project's repository, credentials, forge or
artifact settings.

Only what is given changes (``PATCH /projects/{project}``). Secrets come from files, like
``project add``: a token typed on a command line stays in the shell history and in ``ps``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from ferrous.cli.client import Client, fail, print_json
from ferrous.cli.remote import (
    ArtifactsExpireInOption,
    ForgeApiUrlOption,
    ForgeOption,
    ForgeRepoOption,
    ForgeTokenFileOption,
    JsonOption,
    KeepLatestArtifactsOption,
    UrlOption,
    artifacts_body,
    credentials_body,
    forge_body,
    projects_app,
)


@projects_app.command("update")
def project_update(
    project: Annotated[str, typer.Argument(help="Project name or id.")],
    repo: Annotated[str | None, typer.Option("--repo", help="A new repository URL.")] = None,
    default_branch: Annotated[str | None, typer.Option(help="Branch built by default.")] = None,
    token_file: Annotated[
        Path | None,
        typer.Option(exists=True, dir_okay=False, help="File holding a new HTTPS token."),
    ] = None,
    ssh_key_file: Annotated[
        Path | None,
        typer.Option(exists=True, dir_okay=False, help="File holding a new SSH deploy key."),
    ] = None,
    username: Annotated[str | None, typer.Option(help="User name for the token.")] = None,
    known_hosts_file: Annotated[
        Path | None,
        typer.Option(exists=True, dir_okay=False, help="known_hosts lines of the SSH server."),
    ] = None,
    no_credentials: Annotated[
        bool, typer.Option("--no-credentials", help="Remove the repository credentials.")
    ] = False,
    forge: ForgeOption = None,
    forge_token_file: ForgeTokenFileOption = None,
    forge_api_url: ForgeApiUrlOption = None,
    forge_repo: ForgeRepoOption = None,
    artifacts_expire_in: ArtifactsExpireInOption = None,
    keep_latest_artifacts: KeepLatestArtifactsOption = None,
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Change a project: its repository, default branch, credentials, forge or artifacts.

    `--forge-api-url ""` and `--forge-repo ""` go back to deriving them from the repository
    URL; `--forge none` stops commit statuses and forgets the token; `--artifacts-expire-in ""`
    goes back to the server's expiry.
    """
    body: dict[str, Any] = {}
    if repo is not None:
        body["repo_url"] = repo
    if default_branch is not None:
        body["default_branch"] = default_branch
    credentials = credentials_body(token_file, ssh_key_file, username, known_hosts_file)
    if credentials and no_credentials:
        raise fail("give new credentials or --no-credentials, not both")
    if credentials or no_credentials:
        body["credentials"] = credentials or {"kind": "none"}
    body.update(forge_body(forge, forge_token_file, forge_api_url, forge_repo))
    body.update(artifacts_body(artifacts_expire_in, keep_latest_artifacts))
    if not body:
        raise fail("nothing to change: see ferrous project update --help")
    found = Client(url).request("PATCH", f"/projects/{project}", json=body)
    if as_json:
        print_json(found)
        return
    forge_text = found.get("forge", "none")
    if forge_text != "none":
        forge_text += f" {found.get('forge_repo')} at {found.get('forge_api_url')}"
    sys.stdout.write(f"project {found['name']} updated (forge: {forge_text})\n")
