"""Fetching one exact commit, as GitLab's runner does: the job's ``GIT_*`` variables, the
shallow fetch of the sha, and the fallback for servers that refuse a sha.

A sha is asked for directly first (``git fetch origin <sha>``): protocol v2 servers
(GitHub, GitLab, git >= 2.26 behind ``git daemon`` or ``http-backend``) give any commit they
have, v0 ones only with ``uploadpack.allowReachableSHA1InWant``. When the server refuses,
the ref is fetched and the sha looked for in it, deepening to the whole history when the
shallow fetch did not reach it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ferrous.git_remote.access import GitAccess
from ferrous.git_remote.run import GitFailed, run_git

DEFAULT_DEPTH = 20  # GitLab's default for new projects
STRATEGIES = ("fetch", "clone")
SUBMODULE_STRATEGIES = ("none", "normal", "recursive")


@dataclass(frozen=True, slots=True)
class GitOptions:
    """What the job's variables ask of the checkout."""

    strategy: str = "fetch"
    depth: int = DEFAULT_DEPTH  # 0: the whole history
    submodules: str = "none"
    submodule_depth: int = DEFAULT_DEPTH

    @classmethod
    def of(cls, variables: Mapping[str, str], warn: Callable[[str], None]) -> GitOptions:
        """Unknown values are warned about and replaced by the default, as GitLab does."""
        strategy = variables.get("GIT_STRATEGY") or "fetch"
        if strategy not in STRATEGIES:
            warn(f"WARNING: GIT_STRATEGY {strategy!r} is not fetch, clone or none: using fetch")
            strategy = "fetch"
        depth = _count(variables, "GIT_DEPTH", DEFAULT_DEPTH, warn)
        submodules = variables.get("GIT_SUBMODULE_STRATEGY") or "none"
        if submodules not in SUBMODULE_STRATEGIES:
            warn(
                f"WARNING: GIT_SUBMODULE_STRATEGY {submodules!r} is not none, normal or "
                "recursive: using none"
            )
            submodules = "none"
        return cls(
            strategy, depth, submodules, _count(variables, "GIT_SUBMODULE_DEPTH", depth, warn)
        )


def _count(
    variables: Mapping[str, str], name: str, default: int, warn: Callable[[str], None]
) -> int:
    raw = (variables.get(name) or "").strip()
    if not raw:
        return default
    if raw.isdigit():
        return int(raw)
    warn(f"WARNING: {name} {raw!r} is not a number: using {default}")
    return default


@dataclass(frozen=True, slots=True)
class Target:
    """The commit to check out and the ref it was built for (to name it in the workspace)."""

    sha: str
    branch: str = ""
    tag: str = ""

    @classmethod
    def of(cls, sha: str, ref: str, variables: Mapping[str, str]) -> Target:
        tag = variables.get("CI_COMMIT_TAG") or ""
        branch = "" if tag else variables.get("CI_COMMIT_BRANCH") or ""
        if not (tag or branch) and ref != sha:
            branch = ref  # not said (a merge request's source): try it as a branch
        return cls(sha, branch, tag)

    @property
    def refspecs(self) -> list[str]:
        if self.tag:
            return [f"+refs/tags/{self.tag}:refs/tags/{self.tag}"]
        if self.branch:
            return [f"+refs/heads/{self.branch}:refs/remotes/origin/{self.branch}"]
        return []

    @property
    def local_refs(self) -> list[str]:
        return [spec.rsplit(":", 1)[1] for spec in self.refspecs]


def has_commit(repo: Path, sha: str) -> bool:
    try:
        run_git(["cat-file", "-e", f"{sha}^{{commit}}"], repo=repo)
    except GitFailed:
        return False
    return True


def depth_options(repo: Path, depth: int) -> list[str]:
    if depth > 0:
        return [f"--depth={depth}"]
    shallow = (repo / "shallow").is_file() or (repo / ".git" / "shallow").is_file()
    return ["--unshallow"] if shallow else []


def fetch_commit(
    repo: Path,
    access: GitAccess,
    target: Target,
    depth: int,
    *,
    keep_as: str | None = None,
    note: Callable[[str], None] = lambda text: None,
) -> None:
    """Fetch ``target`` into ``repo`` (whose ``origin`` is ``access.url``).

    ``keep_as`` names a ref that will hold the sha (a cache keeps what it fetched, so that
    maintenance never drops it); without it the sha stays unnamed until checked out. After
    the fallback, ``GIT_DEPTH`` counts from the ref's tip, not from the sha (as in GitLab).
    """
    base = ["fetch", "--quiet", "--no-tags", "--no-write-fetch-head", "--no-recurse-submodules"]

    def fetch(refspecs: list[str], depth: int) -> bool:
        """False when the server has no such ref or refuses the sha (not for other errors)."""
        try:
            run_git(
                [*base, *depth_options(repo, depth), "origin", *refspecs], repo=repo, access=access
            )
        except GitFailed as exc:
            if exc.refused or not exc.missing:
                raise
            return False
        return True

    sha_spec = f"+{target.sha}:{keep_as}" if keep_as else target.sha
    if fetch([sha_spec, *target.refspecs], depth):
        return
    if target.refspecs and fetch([sha_spec], depth):  # the ref is gone, the sha is not
        return
    refspecs = target.refspecs or ["+refs/heads/*:refs/remotes/origin/*"]
    where = target.tag or target.branch or "every branch"
    note(f"The server does not give {target.sha[:8]} by its sha: fetching {where} instead")
    fetch(refspecs, depth)
    if not has_commit(repo, target.sha) and depth > 0:
        fetch(refspecs, 0)
    if not has_commit(repo, target.sha):
        where = target.tag or target.branch or "any branch"
        raise GitFailed(f"commit {target.sha} is not in {where} of {access.url}")
    if keep_as:
        run_git(["update-ref", keep_as, target.sha], repo=repo)
