"""An agent's cache of one repository: a bare repository that jobs fetch into and that
fresh workspaces are made from, by hard links.

Why this shape: every job still gets a workspace of its own, a complete repository with its
own ``.git`` (no alternates, no worktree pointing outside it), so it works unchanged in the
sandbox or a container where only the workspace is mounted, and concurrent jobs of one
project never share a working tree or an index. What is reused is the object store: a job
fetches only what the cache lacks, then the cache's pack files are hard-linked into the new
workspace (git's own ``clone --local`` does this, but refuses a shallow source), which costs
a few system calls whatever the repository's size. Pack files are immutable, so a job that
repacks or gcs its workspace only drops its own links.

The cache is keyed by URL and credentials (a job never sees objects fetched with another
project's token). Fetching and linking hold a file lock, so jobs of one repository take
turns for those steps (shared by the agents of a machine that use the same folder); the
checkout runs in parallel. Every fetched sha is kept under ``refs/ferrous/<sha>``; past
``MAX_PACKS`` packs the oldest of those refs are dropped and the cache repacked.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from ferrous.agent.remote.git_fetch import Target, fetch_commit
from ferrous.git_remote.access import GitAccess
from ferrous.git_remote.run import file_lock, run_git

MAX_PACKS = 32
KEEP_REFS = 100


class GitCache:
    def __init__(self, root: Path, access: GitAccess) -> None:
        seed = f"{access.url}\0{access.credentials.fingerprint()}"
        self.path = root / f"{hashlib.sha256(seed.encode()).hexdigest()[:24]}.git"
        self.access = access
        self._lock = root / f"{self.path.name}.lock"
        self.reused = False

    def fill(
        self,
        workspace: Path,
        target: Target,
        depth: int,
        note: Callable[[str], None] = lambda text: None,
    ) -> dict[str, str]:
        """Fetch ``target`` into the cache and give ``workspace`` (a fresh ``git init``) its
        objects; returns the refs to create there (name -> sha)."""
        with file_lock(self._lock):
            self.reused = (self.path / "HEAD").is_file()
            if not self.reused:
                self._create()
            fetch_commit(
                self.path,
                self.access,
                target,
                depth,
                keep_as=f"refs/ferrous/{target.sha}",
                note=note,
            )
            self._maintain()
            _link_objects(self.path / "objects", workspace / ".git" / "objects")
            if (self.path / "shallow").is_file():
                shutil.copyfile(self.path / "shallow", workspace / ".git" / "shallow")
            return self._refs(target.local_refs)

    def _create(self) -> None:
        staging = self.path.with_name(self.path.name + ".new")
        shutil.rmtree(staging, ignore_errors=True)
        run_git(["init", "--quiet", "--bare", "--template=", str(staging)])
        for key, value in (
            ("remote.origin.url", self.access.url),
            ("gc.auto", "0"),  # maintenance is ours, under the lock
            ("fetch.unpackLimit", "1"),  # packs only: fewer files to link
            ("core.logAllRefUpdates", "false"),
        ):
            run_git(["config", key, value], repo=staging)
        os.rename(staging, self.path)

    def _refs(self, names: list[str]) -> dict[str, str]:
        if not names:
            return {}
        out = run_git(["for-each-ref", "--format=%(refname) %(objectname)", *names], repo=self.path)
        return dict(line.split(" ", 1) for line in out.decode().splitlines() if " " in line)

    def _maintain(self) -> None:
        packs = list((self.path / "objects" / "pack").glob("*.pack"))
        if len(packs) <= MAX_PACKS:
            return
        out = run_git(
            ["for-each-ref", "--sort=-committerdate", "--format=%(refname)", "refs/ferrous/"],
            repo=self.path,
        )
        for name in out.decode().split()[KEEP_REFS:]:
            run_git(["update-ref", "-d", name], repo=self.path)
        run_git(["repack", "-a", "-d", "-q"], repo=self.path)


def _link_objects(source: Path, target: Path) -> None:
    """Hard-link every object file (loose and packed); copy across file systems."""
    for folder, _dirs, files in os.walk(source):
        relative = Path(folder).relative_to(source)
        if relative.parts[:1] == ("info",):
            continue
        (target / relative).mkdir(parents=True, exist_ok=True)
        for name in files:
            if name.startswith("tmp_") or name.endswith(".lock"):
                continue
            try:
                os.link(Path(folder) / name, target / relative / name)
            except FileExistsError:
                continue
            except OSError as exc:
                if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK):
                    raise
                shutil.copy2(Path(folder) / name, target / relative / name)
