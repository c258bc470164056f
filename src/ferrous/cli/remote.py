"""Client commands against a server: projects, builds, jobs and their logs.

Tables for people, ``--json`` for scripts. ``trigger --wait`` follows the build, prints each
job's log as it runs, and exits with the build's result, so a script can gate on it.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from ferrous.cli.checkout import parse_assignments
from ferrous.cli.client import Client, fail, print_json, print_table

UrlOption = Annotated[str | None, typer.Option("--url", help="Server URL (or FERROUS_URL).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
FINISHED = {"success", "failed", "canceled", "skipped"}

projects_app = typer.Typer(help="Projects: the repositories Ferrous builds.", no_args_is_help=True)


def credentials_body(
    token_file: Path | None,
    ssh_key_file: Path | None,
    username: str | None,
    known_hosts_file: Path | None,
) -> dict[str, str] | None:
    """The API's ``credentials`` from files: secrets never go on a command line."""
    if token_file and ssh_key_file:
        raise fail("give --token-file or --ssh-key-file, not both")
    if token_file:
        body = {"kind": "https_token", "token": token_file.read_text().strip()}
        return {**body, "username": username} if username else body
    if ssh_key_file:
        body = {"kind": "ssh_key", "private_key": ssh_key_file.read_text()}
        if known_hosts_file:
            body["known_hosts"] = known_hosts_file.read_text()
        return body
    return None


ForgeOption = Annotated[
    str | None,
    typer.Option(help="Post commit statuses to this forge: github, gitlab, gitea (none: stop)."),
]
ForgeTokenFileOption = Annotated[
    Path | None,
    typer.Option(exists=True, dir_okay=False, help="File holding the forge's status token."),
]
ForgeApiUrlOption = Annotated[
    str | None, typer.Option(help="The forge's API URL (default: from the repository URL).")
]
ForgeRepoOption = Annotated[
    str | None,
    typer.Option(help="owner/name on the forge; GitLab: group/name or the project id."),
]


ArtifactsExpireInOption = Annotated[
    str | None,
    typer.Option(
        help="How long artifacts of jobs without artifacts:expire_in are kept: '30 days', "
        "'1 week', 'never' (default: the server's)."
    ),
]
KeepLatestArtifactsOption = Annotated[
    bool | None,
    typer.Option(
        "--keep-latest-artifacts/--no-keep-latest-artifacts",
        help="Keep the artifacts of each ref's latest successful build past their expiry "
        "(the server keeps them unless told otherwise).",
    ),
]


def artifacts_body(expire_in: str | None, keep_latest: bool | None) -> dict[str, Any]:
    """The API's artifact settings: only those given."""
    body: dict[str, Any] = {}
    if expire_in is not None:
        body["artifacts_expire_in"] = expire_in
    if keep_latest is not None:
        body["keep_latest_artifacts"] = keep_latest
    return body


def forge_body(
    forge: str | None, token_file: Path | None, api_url: str | None, repo: str | None
) -> dict[str, str]:
    """The API's ``forge*`` fields; the token from a file, never from the command line."""
    given = {"forge": forge, "forge_api_url": api_url, "forge_repo": repo}
    body = {name: value for name, value in given.items() if value is not None}
    if token_file:
        body["forge_token"] = token_file.read_text().strip()
    return body


@projects_app.command("add")
def project_add(
    name: Annotated[str, typer.Argument(help="A short name, e.g. my-app.")],
    repo: Annotated[
        str,
        typer.Argument(
            help="The git repository: https://, ssh://, user@host:path, git://, file:// or a path."
        ),
    ],
    default_branch: Annotated[str, typer.Option(help="Branch built by default.")] = "main",
    token_file: Annotated[
        Path | None,
        typer.Option(
            exists=True,
            dir_okay=False,
            help="File holding an HTTPS token (sent as the basic-auth password).",
        ),
    ] = None,
    ssh_key_file: Annotated[
        Path | None,
        typer.Option(exists=True, dir_okay=False, help="File holding an SSH deploy key."),
    ] = None,
    username: Annotated[
        str | None, typer.Option(help="User name for the token (default oauth2).")
    ] = None,
    known_hosts_file: Annotated[
        Path | None,
        typer.Option(exists=True, dir_okay=False, help="known_hosts lines of the SSH server."),
    ] = None,
    forge: ForgeOption = None,
    forge_token_file: ForgeTokenFileOption = None,
    forge_api_url: ForgeApiUrlOption = None,
    forge_repo: ForgeRepoOption = None,
    artifacts_expire_in: ArtifactsExpireInOption = None,
    keep_latest_artifacts: KeepLatestArtifactsOption = None,
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Register a repository as a project (with a default pipeline)."""
    body: dict[str, Any] = {"name": name, "repo_url": repo, "default_branch": default_branch}
    body.update(forge_body(forge, forge_token_file, forge_api_url, forge_repo))
    body.update(artifacts_body(artifacts_expire_in, keep_latest_artifacts))
    credentials = credentials_body(token_file, ssh_key_file, username, known_hosts_file)
    if credentials:
        body["credentials"] = credentials
    project = Client(url).post("/projects", json=body)
    if as_json:
        print_json(project)
    else:
        sys.stdout.write(f"project {project['name']} added ({project['id']})\n")


@projects_app.command("list")
def project_list(url: UrlOption = None, as_json: JsonOption = False) -> None:
    """List projects."""
    items = Client(url).get("/projects")["items"]
    if as_json:
        print_json(items)
    else:
        print_table(items, ["name", "repo_url", "default_branch", "id"])


def trigger_command(
    project: Annotated[str, typer.Argument(help="Project name or id.")],
    ref: Annotated[
        str | None, typer.Option(help="Branch or tag (default branch if unset).")
    ] = None,
    var: Annotated[list[str] | None, typer.Option("--var", help="KEY=VALUE, repeatable.")] = None,
    wait: Annotated[bool, typer.Option(help="Follow the build and exit with its result.")] = False,
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    client = Client(url)
    body: dict[str, Any] = {"variables": parse_assignments(var or [], "--var")}
    if ref:
        body["ref"] = ref
    build = client.post(f"/projects/{project}/builds", json=body)
    if not wait:
        if as_json:
            print_json(build)
        else:
            sys.stdout.write(f"build #{build['number']} {build['status']} ({build['id']})\n")
        return
    sys.stderr.write(f"build #{build['number']} of {build['project_name']} at {build['ref']}\n")
    final = follow_build(client, build["id"], quiet=as_json)
    if as_json:
        print_json(final)
    raise typer.Exit(0 if final["status"] == "success" else 1)


def follow_build(client: Client, build_id: str, *, quiet: bool = False) -> dict[str, Any]:
    """Print each job's log as it runs; return the finished build."""
    shown: set[str] = set()
    while True:
        build = client.get(f"/builds/{build_id}")
        for job in build["jobs"]:
            if job["id"] in shown or job["status"] in ("created", "pending", "manual", "skipped"):
                continue
            shown.add(job["id"])
            if not quiet:
                _print_job_log(client, job)
        if build["status"] in FINISHED:
            break
        time.sleep(0.3)
    for problem in build.get("problems", []):
        where = (
            f"{problem['file']}:{problem['line']}:{problem['column']}: " if problem["line"] else ""
        )
        sys.stderr.write(f"{problem['severity']}: {where}{problem['message']}\n")
    if not quiet:
        print_table(build["jobs"], ["name", "stage", "status", "exit_code", "attempt"])
        sys.stdout.write(f"build #{build['number']}: {build['status']}\n")
    return dict(build)


def _print_job_log(client: Client, job: dict[str, Any]) -> None:
    prefix = f"[{job['name']}] "
    pending = ""
    for event, data in client.stream_log(job["id"]):
        if event == "end":
            break
        pending += json.loads(data)
        *lines, pending = pending.split("\n")
        for line in lines:
            sys.stdout.write(prefix + line + "\n")
    if pending:
        sys.stdout.write(prefix + pending + "\n")
    sys.stdout.flush()


def builds_command(
    project: Annotated[str | None, typer.Option(help="Only this project.")] = None,
    status: Annotated[str | None, typer.Option(help="Only builds in this status.")] = None,
    ref: Annotated[str | None, typer.Option(help="Only builds of this ref.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=200)] = 20,
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    params = {k: v for k, v in {"project": project, "status": status, "ref": ref}.items() if v}
    page = Client(url).get("/builds", params={**params, "limit": limit})
    if as_json:
        print_json(page)
        return
    print_table(
        page["items"], ["number", "project_name", "ref", "sha", "status", "created_at", "id"]
    )


def logs_command(
    job: Annotated[str, typer.Argument(help="Job id.")],
    follow: Annotated[
        bool, typer.Option("-f", "--follow", help="Stream until the job ends.")
    ] = False,
    url: UrlOption = None,
) -> None:
    client = Client(url)
    if not follow:
        sys.stdout.buffer.write(client.get(f"/jobs/{job}/log") or b"")
        return
    for event, data in client.stream_log(job):
        if event == "end":
            break
        sys.stdout.write(json.loads(data))
        sys.stdout.flush()


def cancel_command(
    build: Annotated[str, typer.Argument(help="Build id.")],
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    _show(Client(url).post(f"/builds/{build}/cancel"), as_json)


def retry_command(
    build: Annotated[str | None, typer.Argument(help="Build id (retries failed jobs).")] = None,
    job: Annotated[str | None, typer.Option(help="Retry only this job (id).")] = None,
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    if (build is None) == (job is None):
        raise fail("give a build id, or --job with a job id")
    path = f"/jobs/{job}/retry" if job else f"/builds/{build}/retry"
    _show(Client(url).post(path), as_json)


def play_command(
    job: Annotated[str, typer.Argument(help="Job id of a manual job.")],
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    _show(Client(url).post(f"/jobs/{job}/play"), as_json)


def _show(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(result)
    elif "number" in result:
        sys.stdout.write(f"build #{result['number']}: {result['status']}\n")
    else:
        sys.stdout.write(f"job {result['name']}: {result['status']}\n")
