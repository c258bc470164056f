"""Builds' sources from git repositories, read with the git CLI.

A repository on this machine (a path or a ``file://`` URL) is read in place: a copy would
only cost time. Any other (https, http, ssh, git) is read from a bare mirror in the data
directory (``mirror.GitMirror``), fetched when a branch or tag is resolved (a trigger must
see the newest push) and when a commit it needs is not there yet; an exact sha it already
has costs no network.

A commit's tree is materialised once per sha in the data directory, because a pipeline file
may include other files and ``rules:exists`` looks at the whole tree; trees are immutable,
so the cache never needs invalidating, only trimming.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import tarfile
import tempfile
from collections.abc import Sequence
from io import BytesIO
from pathlib import Path

from ferrous.application.source_ports import ResolvedRef
from ferrous.domain.errors import NotFound, StorageError
from ferrous.domain.repo_credentials import RepoCredentials, url_scheme
from ferrous.git_remote.run import GitFailed, run_git
from ferrous.infrastructure.git.mirror import GitMirror

_SEP = "\x1f"
MAX_TREES = 64
_SHA = re.compile(r"^[0-9a-f]{7,64}$")
_NO_COMMIT = re.compile(r"^0+$")


def local_path(repo_url: str) -> Path:
    if repo_url.startswith("file://"):
        return Path(repo_url.removeprefix("file://"))
    return Path(repo_url)


class GitSourceRepository:
    def __init__(self, cache_dir: Path, mirrors_dir: Path | None = None) -> None:
        self.cache_dir = cache_dir
        self.mirrors_dir = mirrors_dir or cache_dir.parent / "mirrors"
        self._info: dict[str, dict[str, str]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def _git(self, repo: Path, *args: str) -> bytes:
        try:
            return await asyncio.to_thread(run_git, args, repo=repo)
        except GitFailed as exc:
            raise NotFound(exc.message) from exc

    async def _repository(
        self,
        repo_url: str,
        credentials: RepoCredentials | None,
        *,
        ref: str | None = None,
        commits: Sequence[str] = (),
    ) -> Path:
        """Where to read ``repo_url``: fetched first for ``ref`` (always) or missing
        ``commits`` (only then)."""
        if url_scheme(repo_url) == "file":
            path = local_path(repo_url)
            if not path.exists():
                raise NotFound(f"repository {repo_url} does not exist")
            return path
        mirror = GitMirror(self.mirrors_dir, repo_url, credentials)
        async with self._locks.setdefault(str(mirror.path), asyncio.Lock()):
            if ref is not None and not (_SHA.match(ref) and await _has(mirror, ref)):
                await asyncio.to_thread(mirror.update)
            for sha in commits:
                if not await _has(mirror, sha):
                    await self._fetch_commit(mirror, sha)
        return mirror.path

    async def _fetch_commit(self, mirror: GitMirror, sha: str) -> None:
        if (mirror.path / "HEAD").is_file():  # a new branch is likelier than a dangling sha
            await asyncio.to_thread(mirror.update)
            if await _has(mirror, sha):
                return
        try:
            await asyncio.to_thread(mirror.fetch_commit, sha)
        except GitFailed as exc:
            if exc.refused or not exc.missing:
                raise
            raise NotFound(f"commit {sha} is not in {mirror.url}") from exc

    async def resolve(
        self, repo_url: str, ref: str, credentials: RepoCredentials | None = None
    ) -> ResolvedRef:
        """One `git for-each-ref` tells what ``ref`` is and, for a branch (the usual trigger),
        what its commit says; a tag or a sha takes one `git log` more."""
        commits = [ref] if re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", ref) else []
        repo = await self._repository(repo_url, credentials, ref=ref, commits=commits)
        kinds = await asyncio.to_thread(
            _maybe_git,
            repo,
            "for-each-ref",
            f"--format=%(refname){_SEP}%(objecttype){_SEP}%(objectname){_SEP}"
            f"%(authorname) %(authoremail){_SEP}%(committerdate:iso-strict){_SEP}%(contents)%00",
            f"refs/heads/{ref}",
            f"refs/tags/{ref}",
        )
        found = {}
        for record in kinds.decode(errors="replace").split("\0"):
            name, _, rest = record.strip("\n").partition(_SEP)
            if name:
                found[name] = rest
        head = found.get(f"refs/heads/{ref}")
        if head is not None and head.startswith(f"commit{_SEP}"):
            sha, author, timestamp, message = head.split(_SEP, 4)[1:]
            return self._remember(sha, author, timestamp, message, branch=ref, tag=None)
        branch = ref if head is not None else None
        tag = ref if f"refs/tags/{ref}" in found and branch is None else None
        target = f"refs/heads/{ref}" if branch else f"refs/tags/{ref}" if tag else ref
        out = await self._git(
            repo, "log", "-1", f"--format=%H{_SEP}%an <%ae>{_SEP}%cI{_SEP}%B", target, "--"
        )
        sha, author, timestamp, message = out.decode(errors="replace").split(_SEP, 3)
        return self._remember(sha, author, timestamp, message, branch=branch, tag=tag)

    def _remember(
        self, sha: str, author: str, timestamp: str, message: str, **kinds: str | None
    ) -> ResolvedRef:
        self._info[sha] = {
            "author": author,
            "timestamp": timestamp,
            "message": message.rstrip("\n"),
        }
        return ResolvedRef(sha=sha, branch=kinds["branch"], tag=kinds["tag"])

    async def commit_info(
        self, repo_url: str, sha: str, credentials: RepoCredentials | None = None
    ) -> dict[str, str]:
        if sha not in self._info:
            await self.resolve(repo_url, sha, credentials)
        return self._info[sha]

    async def checkout(
        self, repo_url: str, sha: str, credentials: RepoCredentials | None = None
    ) -> Path:
        target = self.cache_dir / sha
        if target.is_dir():
            return target
        lock = self._locks.setdefault(sha, asyncio.Lock())
        async with lock:
            if target.is_dir():
                return target
            repo = await self._repository(repo_url, credentials, commits=[sha])
            archive = await self._git(repo, "archive", "--format=tar", sha)
            await asyncio.to_thread(self._unpack, archive, target)
            await asyncio.to_thread(self._trim)
        return target

    def _unpack(self, archive: bytes, target: Path) -> None:
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=self.cache_dir, prefix=".unpack-"))
        try:
            with tarfile.open(fileobj=BytesIO(archive)) as tar:
                tar.extractall(staging, filter="data")
            staging.rename(target)
        except OSError as exc:
            shutil.rmtree(staging, ignore_errors=True)
            if not target.is_dir():
                raise StorageError(f"cannot unpack the commit's tree: {exc}") from exc

    def _trim(self) -> None:
        trees = sorted(
            (p for p in self.cache_dir.iterdir() if p.is_dir() and not p.name.startswith(".")),
            key=lambda p: p.stat().st_mtime,
        )
        for old in trees[:-MAX_TREES]:
            shutil.rmtree(old, ignore_errors=True)

    async def changed_files(
        self,
        repo_url: str,
        before: str,
        after: str,
        credentials: RepoCredentials | None = None,
        *,
        since_merge_base: bool = False,
    ) -> Sequence[str] | None:
        """None when there is nothing to compare with: a new branch (``before`` empty or
        ``000...``), or a ``before`` the repository no longer has (a force push). As in
        GitLab, every ``rules:changes`` is then true."""
        if not before or _NO_COMMIT.match(before):
            return None
        repo = await self._repository(repo_url, credentials, commits=[after])
        if url_scheme(repo_url) != "file":
            try:
                repo = await self._repository(repo_url, credentials, commits=[before])
            except NotFound:
                return None
        elif not await asyncio.to_thread(_exists, repo, before):
            return None
        span = f"{before}...{after}" if since_merge_base else f"{before}..{after}"
        out = await self._git(repo, "diff", "--name-only", "--no-renames", "-z", span)
        return [name for name in out.decode(errors="replace").split("\0") if name]


async def _has(mirror: GitMirror, sha: str) -> bool:
    return await asyncio.to_thread(mirror.has, sha)


def _exists(repo: Path, sha: str) -> bool:
    try:
        run_git(["cat-file", "-e", f"{sha}^{{commit}}"], repo=repo)
    except GitFailed:
        return False
    return True


def _maybe_git(repo: Path, *args: str) -> bytes:
    """Output of a git command, or nothing if it failed (an unknown ref is no error here)."""
    try:
        return run_git(args, repo=repo)
    except GitFailed:
        return b""
