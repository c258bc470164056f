"""The source a job starts from: what a commit of the checkout, as it is now, would contain.

In a git repository that is what git sees: tracked files plus untracked ones that are not
ignored (``git ls-files -co --exclude-standard``), uncommitted changes included; ``.git`` itself
is not copied (a job must not be able to change the repository it was started from). Outside
git, it is every file under the folder. The file list is made once per run; every job
attempt gets its own fresh copy of it, so jobs see each other's files only through artifacts.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from ferrous.agent.file_copy import copy_files, list_tree


class SourceTree(NamedTuple):
    root: Path
    files: tuple[str, ...]  # relative "/" paths
    is_git: bool

    @classmethod
    def scan(cls, root: Path, *, skip: Sequence[Path] = ()) -> SourceTree:
        """List the checkout's files; ``skip`` folders (the run folder) are left out."""
        root = root.resolve()
        listed = _git_files(root) if _maybe_git(root) else None
        if listed is None:
            return cls(root, tuple(sorted(list_tree(root, skip=skip))), is_git=False)
        skipped = [os.path.relpath(p.resolve(), root).replace(os.sep, "/") + "/" for p in skip]
        skipped = [s for s in skipped if not s.startswith("../")]
        files = [f for f in listed if not any(f.startswith(s) for s in skipped)]
        return cls(root, tuple(files), is_git=True)

    def copy_to(self, workspace: Path) -> None:
        """Fill an empty folder with a copy of the source."""
        copy_files(self.root, self.files, workspace)

    def untracked(self, workspace: Path) -> list[str]:
        """Files in a job's workspace that git would call untracked (``artifacts:untracked``).

        That is every file the job created or that was untracked in the checkout, except what
        ``.gitignore`` ignores. Outside git: every file that was not in the source.
        """
        git_dir = self.root / ".git"
        if self.is_git and git_dir.is_dir():  # a sub-folder of a repository: no index to use
            found = _git_files(workspace, git_dir=git_dir, others_only=True)
            if found is not None:
                return found
        known = set(self.files)
        return [f for f in list_tree(workspace) if f not in known]


def _maybe_git(folder: Path) -> bool:
    """Whether git could see a work tree here; spares starting git where there is none."""
    if "GIT_DIR" in os.environ or "GIT_WORK_TREE" in os.environ:
        return True
    return any((parent / ".git").exists() for parent in (folder, *folder.parents))


def _git_files(
    folder: Path, *, git_dir: Path | None = None, others_only: bool = False
) -> list[str] | None:
    """``git ls-files`` of a folder, or None when it is not in a git work tree."""
    argv = ["git", "-C", str(folder)]
    if git_dir is not None:
        argv += [f"--git-dir={git_dir}", f"--work-tree={folder}"]
    argv += ["ls-files", "-z", "--exclude-standard", "-o" if others_only else "-co"]
    try:
        done = subprocess.run(argv, capture_output=True, check=False, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    names = done.stdout.decode("utf-8", "surrogateescape").split("\0")
    return list(dict.fromkeys(n for n in names if n))
