"""The server's bare mirror of one remote repository: its branches and tags, kept fresh.

One mirror per (URL, credentials): a project never reads through another project's access,
and a token that changes starts a new mirror. Only ``refs/heads/*`` and ``refs/tags/*`` are
mirrored (``git clone --mirror`` would also take GitHub's thousands of ``refs/pull/*``); a
commit that no branch or tag holds (a merge request's head) is fetched by its sha, which
protocol v2 servers allow.

Writers (the first clone, fetches) hold a file lock on the mirror, so threads and server
processes sharing a data directory take turns; readers (``for-each-ref``, ``archive``,
``diff``) need none, since git publishes objects before the refs that name them. Methods
block: the async adapter calls them in a thread.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
from pathlib import Path

import structlog

from ferrous.domain.errors import NotFound
from ferrous.domain.repo_credentials import RepoCredentials
from ferrous.git_remote.access import GitAccess
from ferrous.git_remote.run import GitFailed, file_lock, run_git

REFSPECS = ("+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*")
log = structlog.get_logger(__name__)


def mirror_key(url: str, credentials: RepoCredentials | None) -> str:
    """The folder name of the mirror of ``url`` read with ``credentials``."""
    clean = GitAccess(url, credentials)
    seed = f"{clean.url}\0{clean.credentials.fingerprint()}"
    return hashlib.sha256(seed.encode()).hexdigest()[:24]


class GitMirror:
    def __init__(self, root: Path, url: str, credentials: RepoCredentials | None) -> None:
        self.url = url
        self.credentials = credentials
        self.path = root / f"{mirror_key(url, credentials)}.git"
        self._lock_path = root / f"{self.path.name}.lock"

    def has(self, sha: str) -> bool:
        if not (self.path / "HEAD").is_file():
            return False
        try:
            run_git(["cat-file", "-e", f"{sha}^{{commit}}"], repo=self.path)
        except GitFailed:
            return False
        return True

    def update(self) -> None:
        """Fetch every branch and tag (``--prune``: deleted ones go); clone on first use."""
        with file_lock(self._lock_path), GitAccess(self.url, self.credentials) as access:
            started = time.monotonic()
            created = self._create(access)
            self._fetch(access, ["fetch", "--quiet", "--prune", "--no-tags", "origin"])
            log.info(
                "git_mirror_fetched",
                url=access.url,
                created=created,
                seconds=round(time.monotonic() - started, 3),
            )

    def fetch_commit(self, sha: str) -> None:
        """Fetch one commit that no branch or tag holds (it stays unnamed in the mirror)."""
        with file_lock(self._lock_path), GitAccess(self.url, self.credentials) as access:
            self._create(access)
            self._fetch(access, ["fetch", "--quiet", "--no-tags", "origin", sha])

    def _fetch(self, access: GitAccess, args: list[str]) -> None:
        try:
            run_git(args, repo=self.path, access=access)
        except GitFailed as exc:
            if exc.missing and not exc.refused and args[-1] == "origin":
                raise NotFound(f"repository {access.url} not found: {exc.message}") from exc
            raise

    def _create(self, access: GitAccess) -> bool:
        """A bare repository whose ``origin`` mirrors branches and tags, made atomically;
        False when it existed already."""
        if (self.path / "HEAD").is_file():
            return False
        self.path.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=self.path.parent, prefix=".new-"))
        try:
            run_git(["init", "--quiet", "--bare", "--template=", str(staging)])
            run_git(["config", "remote.origin.url", access.url], repo=staging)
            for refspec in REFSPECS:
                run_git(["config", "--add", "remote.origin.fetch", refspec], repo=staging)
            os.rename(staging, self.path)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return True
