"""A job's source on an agent: the build's commit, cloned into the job's workspace.

The workspace is a real clone with its ``.git`` (scripts that run ``git describe`` or
``git log`` work as on GitLab), checked out at the build's sha as a detached HEAD. The
repository is a local path or a ``file://`` URL for now: git clones those with hard links,
so a clone costs little more than the checkout. Forges and credentials come later.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from ferrous.domain.errors import ExecutionError

GIT_TIMEOUT = 600.0


def clone_source(repo_url: str) -> str:
    """What to give ``git clone``: a ``file://`` URL as a path, so that git links objects."""
    if repo_url.startswith("file://"):
        return repo_url.removeprefix("file://")
    return repo_url


def display_url(repo_url: str) -> str:
    """The URL without credentials, for the job log."""
    parts = urlsplit(repo_url)
    if parts.scheme and "@" in parts.netloc:
        return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))
    return repo_url


def _git(*args: str, repo: Path | None = None) -> bytes:
    argv = ["git", "-c", "advice.detachedHead=false"]
    if repo is not None:
        argv += ["-C", str(repo)]
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
    try:
        done = subprocess.run(
            [*argv, *args], capture_output=True, env=env, timeout=GIT_TIMEOUT, check=False
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise ExecutionError(f"git {args[0]} could not run: {exc}") from exc
    if done.returncode != 0:
        lines = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise ExecutionError(f"git {args[0]} failed: {lines[-1] if lines else done.returncode}")
    return done.stdout


class GitCommitSource:
    """Implements ``job_runner.SourceFetcher`` for one commit of one repository."""

    def __init__(self, repo_url: str, sha: str, ref: str = "") -> None:
        self.repo_url = repo_url
        self.sha = sha
        self.ref = ref

    def fetch(self, workspace: Path, note: Callable[[str], None]) -> None:
        note(f"Fetching {display_url(self.repo_url)}")
        workspace.parent.mkdir(parents=True, exist_ok=True)
        # An empty template: no sample hooks nor description to copy (and delete after the
        # job), about half of a small clone's cost; scripts see the same repository.
        _git(
            "clone",
            "--template=",
            "--no-checkout",
            "--quiet",
            clone_source(self.repo_url),
            str(workspace),
        )
        _git("checkout", "--quiet", "--detach", self.sha, repo=workspace)
        ref = f" (ref is {self.ref})" if self.ref else ""
        note(f"Checked out {self.sha[:8]} as detached HEAD{ref}")

    def untracked(self, workspace: Path) -> list[str]:
        """Files the job created that git does not ignore (``artifacts:untracked``)."""
        try:
            out = _git("ls-files", "-z", "-o", "--exclude-standard", repo=workspace)
        except ExecutionError:
            return []
        names = out.decode("utf-8", "surrogateescape").split("\0")
        return [name for name in names if name]
