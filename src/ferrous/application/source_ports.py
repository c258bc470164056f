"""The git repositories builds come from: the port the triggers read them through.

Kept apart from ``ports`` (the units of work and their repositories) because it is a
different concern: reading commits and trees from forges, with credentials.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ferrous.domain.repo_credentials import RepoCredentials


@dataclass(frozen=True, slots=True)
class ResolvedRef:
    sha: str
    branch: str | None  # set when the ref named a branch
    tag: str | None  # set when the ref named a tag


class SourceRepository(Protocol):
    """The git repositories builds come from, read with the project's ``credentials``.

    Every method raises NotFound for an unknown repository, ref or commit, and
    ``RepositoryUnavailable`` when the repository cannot be reached or refuses the
    credentials; messages never hold a secret.
    """

    async def resolve(
        self, repo_url: str, ref: str, credentials: RepoCredentials | None = None
    ) -> ResolvedRef:
        """The commit ``ref`` (branch, tag or sha) points at now."""
        ...

    async def checkout(
        self, repo_url: str, sha: str, credentials: RepoCredentials | None = None
    ) -> Path:
        """A read-only folder with the tree of ``sha`` (cached; do not modify it)."""
        ...

    async def commit_info(
        self, repo_url: str, sha: str, credentials: RepoCredentials | None = None
    ) -> dict[str, str]:
        """``message``, ``author``, ``timestamp`` of a commit."""
        ...

    async def changed_files(
        self,
        repo_url: str,
        before: str,
        after: str,
        credentials: RepoCredentials | None = None,
        *,
        since_merge_base: bool = False,
    ) -> Sequence[str] | None:
        """Paths changed from ``before`` to ``after`` (both sides of a rename); with
        ``since_merge_base``, only what ``after`` changed since it forked from ``before``
        (a merge request's changes against its target branch, as ``git diff before...after``).

        None when there is no ``before`` to compare with (``000...`` for a new branch, or a
        commit the repository lost to a force push): as in GitLab, ``rules:changes`` is then
        true.
        """
        ...
