"""Sets of workspace files kept as plain folders: the local artifact and cache stores.

A folder is the fastest thing to read back on the same machine (no packing, no compression),
which is all ``ferrous run`` needs; a server agent packs the same file selections instead.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path

from ferrous.agent.file_copy import copy_files, list_tree
from ferrous.domain.errors import StorageError


class FolderStore:
    """One folder per key under ``root``, holding files at their workspace paths.

    Saving replaces a key's files as a whole (a retried job's last attempt wins), through a
    rename, so a reader never sees half of them, even while another job saves the same key.
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    def folder(self, key: str) -> Path:
        return self.root / key

    def has(self, key: str) -> bool:
        return self.folder(key).is_dir()

    def save(self, key: str, workspace: Path, files: Sequence[str]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        staging = self.root / f".{key}.{uuid.uuid4().hex[:12]}"
        copy_files(workspace, files, staging)
        target = self.folder(key)
        for _ in range(20):  # another job may be saving the same key right now
            try:
                os.rename(staging, target)  # atomic; fails while the target holds files
            except OSError:
                old = self.root / f".{key}.old.{uuid.uuid4().hex[:12]}"
                with contextlib.suppress(FileNotFoundError):
                    os.rename(target, old)
                shutil.rmtree(old, ignore_errors=True)
            else:
                return
        shutil.rmtree(staging, ignore_errors=True)
        raise StorageError(f"could not store {key!r} in {self.root}")

    def files(self, key: str) -> list[str]:
        folder = self.folder(key)
        return sorted(list_tree(folder)) if folder.is_dir() else []

    def unpack(self, key: str, workspace: Path) -> int | None:
        """Copy a job's artifacts into a workspace; the number of files, None if it has none."""
        folder = self.folder(key)
        if not folder.is_dir():
            return None
        files = list_tree(folder)
        copy_files(folder, files, workspace, replace=True)
        return len(files)
