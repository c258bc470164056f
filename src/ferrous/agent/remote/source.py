"""A job's source on an agent: the build's commit, fetched into the job's workspace.

The workspace is a real repository with its ``.git`` (scripts that run ``git describe`` or
``git log`` work as on GitLab), checked out at the build's sha as a detached HEAD, with the
build's branch as ``refs/remotes/origin/<branch>`` (or its tag). GitLab's variables choose
how (``git_fetch.GitOptions``):

- ``GIT_STRATEGY=fetch`` (default): through the agent's cache of the repository
  (``git_cache.GitCache``): only new objects cross the network.
- ``GIT_STRATEGY=clone``: a fresh fetch straight into the workspace, nothing reused.
- ``GIT_STRATEGY=none``/``empty``: handled by the job runner (an empty workspace).
- ``GIT_DEPTH`` (default 20, 0 for the whole history), ``GIT_SUBMODULE_STRATEGY``
  (none, normal, recursive) and ``GIT_SUBMODULE_DEPTH`` (default ``GIT_DEPTH``).

The credentials come with the job and reach git only through ``git_remote.GitAccess``; the
workspace's ``origin`` is the URL without them, so nothing secret stays in ``.git/config``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path

from ferrous.agent.remote.git_cache import GitCache
from ferrous.agent.remote.git_fetch import GitOptions, Target, fetch_commit
from ferrous.domain.repo_credentials import RepoCredentials
from ferrous.git_remote.access import GitAccess
from ferrous.git_remote.run import GitFailed, run_git


class GitCommitSource:
    """Implements ``job_runner.SourceFetcher`` for one commit of one repository."""

    def __init__(
        self,
        repo_url: str,
        sha: str,
        ref: str = "",
        *,
        credentials: RepoCredentials | None = None,
        cache_dir: Path | None = None,
    ) -> None:
        self.repo_url = repo_url
        self.sha = sha
        self.ref = ref
        self.credentials = credentials
        self.cache_dir = cache_dir  # None: every fetch is a clone

    def fetch(
        self, workspace: Path, variables: Mapping[str, str], note: Callable[[str], None]
    ) -> None:
        options = GitOptions.of(variables, note)
        target = Target.of(self.sha, self.ref, variables)
        started = time.monotonic()
        with GitAccess(self.repo_url, self.credentials) as access:
            depth = f"git depth set to {options.depth}" if options.depth else "full history"
            note(f"Fetching changes of {access.url} with {depth}...")
            workspace.parent.mkdir(parents=True, exist_ok=True)
            run_git(["init", "--quiet", "--template=", str(workspace)])
            run_git(["remote", "add", "origin", access.url], repo=workspace)
            if options.strategy == "fetch" and self.cache_dir is not None:
                cache = GitCache(self.cache_dir, access)
                refs = cache.fill(workspace, target, options.depth, note)
                for name, sha in refs.items():
                    run_git(["update-ref", "--no-deref", name, sha], repo=workspace)
                how = "Reused" if cache.reused else "Created"
                note(f"{how} the agent's git cache of the repository")
            else:
                fetch_commit(workspace, access, target, options.depth, note=note)
                note("Created fresh repository.")
            run_git(
                ["-c", "advice.detachedHead=false", "checkout", "-q", "-f", "--detach", self.sha],
                repo=workspace,
            )
            ref = f" (ref is {target.tag or target.branch})" if target.tag or target.branch else ""
            note(f"Checked out {self.sha[:8]} as detached HEAD{ref}")
            self._submodules(workspace, access, options, note)
        note(f"Source ready in {time.monotonic() - started:.2f} s")

    def _submodules(
        self,
        workspace: Path,
        access: GitAccess,
        options: GitOptions,
        note: Callable[[str], None],
    ) -> None:
        if options.submodules == "none":
            return
        if not (workspace / ".gitmodules").is_file():
            note("No submodules to update")
            return
        recursive = ["--recursive"] if options.submodules == "recursive" else []
        how = "recursively" if recursive else "(not recursively)"
        note(f"Updating/initializing submodules {how}...")
        depth = [f"--depth={options.submodule_depth}"] if options.submodule_depth else []
        run_git(["submodule", "sync", *recursive], repo=workspace, access=access)
        run_git(
            ["submodule", "update", "--init", *recursive, *depth], repo=workspace, access=access
        )

    def untracked(self, workspace: Path) -> list[str]:
        """Files the job created that git does not ignore (``artifacts:untracked``)."""
        try:
            out = run_git(["ls-files", "-z", "-o", "--exclude-standard"], repo=workspace)
        except GitFailed:
            return []
        names = out.decode("utf-8", "surrogateescape").split("\0")
        return [name for name in names if name]
