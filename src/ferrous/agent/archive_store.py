"""Sets of workspace files kept as archives in a folder: the local artifact and cache stores.

``ferrous run`` keeps them as agents send them to a server: one ``.tar.zst`` per key, made
by ``ferrous.archive.pack`` and read back by ``ferrous.archive.unpack``, so a local run goes
through the same code, and the same refusals of hostile entries, as a build on a server.
"""

from __future__ import annotations

import dataclasses
import os
import uuid
from collections.abc import Sequence
from pathlib import Path

from ferrous.archive import SUFFIX, PackedArchive, entries, pack, unpack


class ArchiveFolder:
    """One archive per name under ``root`` (names are the callers' folder-safe keys).

    Saving packs into a temporary file and renames it over the old archive: a reader never
    sees half of one, even while another job saves the same name, and the last save wins.
    """

    def __init__(self, root: Path, *, outside_links: bool = False) -> None:
        self.root = root
        #: keep symlinks that point out of the workspace (caches: a virtualenv's interpreter
        #: link); artifacts leave them out, and refuse them when unpacking
        self.outside_links = outside_links

    def path(self, name: str) -> Path:
        return self.root / f"{name}{SUFFIX}"

    def has(self, name: str) -> bool:
        return self.path(name).is_file()

    def save(self, name: str, workspace: Path, files: Sequence[str]) -> PackedArchive:
        self.root.mkdir(parents=True, exist_ok=True)
        staging = self.root / f".{name}.{uuid.uuid4().hex[:12]}.tmp"
        try:
            packed = pack(workspace, files, staging, keep_outside_links=self.outside_links)
            os.replace(staging, self.path(name))
        finally:
            staging.unlink(missing_ok=True)
        return dataclasses.replace(packed, path=self.path(name))

    def unpack(self, name: str, workspace: Path) -> int | None:
        """Unpack an archive into a workspace: the number of files, None if there is none."""
        try:
            source = self.path(name).open("rb")
        except FileNotFoundError:
            return None
        with source:
            workspace.mkdir(parents=True, exist_ok=True)
            return unpack(source, workspace, allow_outside_links=self.outside_links)

    def files(self, name: str) -> list[str]:
        """The files and links an archive holds (folders left out), sorted."""
        try:
            source = self.path(name).open("rb")
        except FileNotFoundError:
            return []
        with source:
            return sorted(entry.path for entry in entries(source) if entry.kind != "dir")
