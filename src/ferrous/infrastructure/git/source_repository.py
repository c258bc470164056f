"""Builds' sources from git repositories, read with the git CLI.

A project's repository is a local path or a ``file://`` URL for now (forges and mirrors come
later). A commit's tree is materialised once per sha in the data directory, because a
pipeline file may include other files and ``rules:exists`` looks at the whole tree; trees are
immutable, so the cache never needs invalidating, only trimming.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tarfile
import tempfile
from collections.abc import Sequence
from io import BytesIO
from pathlib import Path

from ferrous.application.ports import ResolvedRef
from ferrous.domain.errors import NotFound, StorageError

_SEP = "\x1f"
MAX_TREES = 64


def local_path(repo_url: str) -> Path:
    if repo_url.startswith("file://"):
        return Path(repo_url.removeprefix("file://"))
    return Path(repo_url)


class GitSourceRepository:
    def __init__(self, cache_dir: Path) -> None:
        self.cache_dir = cache_dir
        self._info: dict[str, dict[str, str]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def _git(self, repo_url: str, *args: str, check: bool = True) -> bytes:
        process = await asyncio.create_subprocess_exec(
            "git",
            "-C",
            str(local_path(repo_url)),
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"},
        )
        out, err = await process.communicate()
        if check and process.returncode != 0:
            message = err.decode(errors="replace").strip().splitlines()
            raise NotFound(f"git {args[0]}: {message[-1] if message else 'failed'}")
        return out

    async def resolve(self, repo_url: str, ref: str) -> ResolvedRef:
        """One `git for-each-ref` tells what ``ref`` is and, for a branch (the usual trigger),
        what its commit says; a tag or a sha takes one `git log` more."""
        if not local_path(repo_url).exists():
            raise NotFound(f"repository {repo_url} does not exist")
        kinds = await self._git(
            repo_url,
            "for-each-ref",
            f"--format=%(refname){_SEP}%(objecttype){_SEP}%(objectname){_SEP}"
            f"%(authorname) %(authoremail){_SEP}%(committerdate:iso-strict){_SEP}%(contents)%00",
            f"refs/heads/{ref}",
            f"refs/tags/{ref}",
            check=False,
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
            repo_url, "log", "-1", f"--format=%H{_SEP}%an <%ae>{_SEP}%cI{_SEP}%B", target, "--"
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

    async def commit_info(self, repo_url: str, sha: str) -> dict[str, str]:
        if sha not in self._info:
            await self.resolve(repo_url, sha)
        return self._info[sha]

    async def checkout(self, repo_url: str, sha: str) -> Path:
        target = self.cache_dir / sha
        if target.is_dir():
            return target
        lock = self._locks.setdefault(sha, asyncio.Lock())
        async with lock:
            if target.is_dir():
                return target
            archive = await self._git(repo_url, "archive", "--format=tar", sha)
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

    async def changed_files(self, repo_url: str, before: str, after: str) -> Sequence[str]:
        out = await self._git(repo_url, "diff", "--name-only", "-z", before, after)
        return [name for name in out.decode(errors="replace").split("\0") if name]
