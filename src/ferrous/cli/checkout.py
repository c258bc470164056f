"""The trigger context of a local checkout, shared by ``ferrous lint`` and ``ferrous run``.

Both commands must see the same predefined variables for the same checkout, or a rule that
``lint`` says matches would not match in ``run``.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import typer

from ferrous.pipeline_config.context import PIPELINE_SOURCES, TriggerContext


def _git(repo: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(repo), *args],
            capture_output=True,
            text=True,
            check=False,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def parse_assignments(pairs: list[str], option: str) -> dict[str, str]:
    """``KEY=VALUE`` options into a mapping; a malformed one is a usage error."""
    values: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"expected KEY=VALUE, got {pair!r}", param_hint=option)
        values[key] = value
    return values


def checkout_context(
    repo: Path,
    *,
    branch: str | None,
    tag: str | None,
    source: str,
    variables: dict[str, str],
    changed: list[str] | None,
    project_dir: str | None = None,
) -> TriggerContext:
    """The context for a checkout: git's branch and commit unless given on the command line."""
    if source not in PIPELINE_SOURCES:
        raise typer.BadParameter(
            f"unknown source {source!r}; one of {', '.join(sorted(PIPELINE_SOURCES))}",
            param_hint="--source",
        )
    if branch and tag:
        raise typer.BadParameter("give --branch or --tag, not both", param_hint="--tag")
    sha = _git(repo, "rev-parse", "HEAD")
    if branch is None and tag is None:
        branch = _git(repo, "symbolic-ref", "--short", "-q", "HEAD") or "main"
    message = _git(repo, "log", "-1", "--format=%B") if sha else None
    default_branch = _git(repo, "config", "--get", "init.defaultBranch") or "main"
    return TriggerContext(
        source=source,
        branch=branch,
        tag=tag,
        sha=sha or "0" * 40,
        commit_message=message or "",
        default_branch=default_branch,
        project_name=repo.resolve().name,
        project_path=repo.resolve().name,
        project_dir=project_dir or str(repo.resolve()),
        changed_files=tuple(changed) if changed else None,
        variables=variables,
    )
