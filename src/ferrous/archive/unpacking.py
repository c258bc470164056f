"""Unpacking an archive into a folder that may already hold files (artifacts of earlier jobs
over a checkout, a cache over a workspace): the archive wins, and nothing lands outside.

Each member passes three checks before its data is written: the name rules of
:mod:`.safety` (the same as :func:`entries`, so what the server accepted unpacks, and nothing
is written under one of the archive's own symlinks), a look at the folders on the way, and
tarfile's ``data`` filter (``realpath`` containment of the path and of link targets,
permission bits cleaned: no setuid, no group/other write, owner can read and write). A
folder on the way may be a symlink already on disk (a checkout's ``dist -> build/dist``
under an artifact's ``dist/x``) as long as its real path, resolved right then, lies inside
the destination; such
a folder is never remembered as checked, since a later member may replace what it leads
through. What stands at the member's own path is removed just before the filter runs (the
filter follows a symlink there, and that symlink is about to be replaced, not written
through); the file itself is created with ``O_NOFOLLOW | O_EXCL``. A refused member stops
the unpacking: the members before it stay written, inside the destination only, which is
harmless because the job fails on the error anyway.

Caches (``allow_outside_links``) may create symlinks to anywhere: for those the ``tar``
filter replaces the ``data`` filter (the member's own path is still held inside); the look
at the folders on the way keeps anything from being written through them.
"""

from __future__ import annotations

import os
import shutil
import stat
import tarfile
from pathlib import Path
from typing import BinaryIO

from .format import ArchiveEntry
from .safety import SymlinkTracker, check_member, parents, refuse
from .stream import TarStream

_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def _filter_problem(exc: tarfile.FilterError, member: tarfile.TarInfo) -> str:
    if isinstance(exc, tarfile.AbsolutePathError):
        return "absolute path"
    if isinstance(exc, tarfile.OutsideDestinationError):
        return "leaves the destination"
    if isinstance(exc, tarfile.SpecialFileError):
        return "device or fifo"
    if isinstance(exc, tarfile.AbsoluteLinkError | tarfile.LinkOutsideDestinationError):
        kind = "symlink" if member.issym() else "hard link"
        return f"{kind} to {member.linkname} points outside"
    return str(exc)


class _Folder:
    """The destination, with the folders already known to be real folders (not links)."""

    def __init__(self, destination: Path) -> None:
        destination.mkdir(parents=True, exist_ok=True)
        self.root = os.path.realpath(destination)
        self._dirs: set[str] = set()

    def full(self, path: str) -> str:
        return os.path.join(self.root, path)

    def holds(self, real: str) -> bool:
        return real == self.root or real.startswith(self.root + os.sep)

    def make_parents(self, path: str, name: str) -> bool:
        """Create the folders above ``path``; a file in the way is replaced, a symlink in the
        way is followed when it leads inside and refuses the member otherwise. True when
        ``path`` is reached through a symlink."""
        linked = False  # a folder so far was reached through a symlink: remember none below
        for folder in parents(path):
            if not linked and folder in self._dirs:
                continue
            full = self.full(folder)
            try:
                mode = os.lstat(full).st_mode
            except FileNotFoundError:
                os.mkdir(full)
            else:
                if stat.S_ISLNK(mode):
                    self._follow(folder, name)
                    linked = True
                    continue
                if not stat.S_ISDIR(mode):
                    os.unlink(full)
                    os.mkdir(full)
            if not linked:
                self._dirs.add(folder)
        return linked

    def _follow(self, folder: str, name: str) -> None:
        """Let a member be written through the symlink ``folder`` if it really leads to a
        folder inside: one it leads to but that does not exist yet is created, a symlink to
        something else (a file, itself) is replaced by a folder."""
        full = self.full(folder)
        real = os.path.realpath(full)
        if not self.holds(real):
            raise refuse(name, f"would write through a symlink ({folder}) leading outside")
        try:
            mode = os.stat(full).st_mode
        except FileNotFoundError:
            os.makedirs(real, exist_ok=True)
            return
        except OSError:  # a loop of links
            mode = 0
        if not stat.S_ISDIR(mode):
            os.unlink(full)
            os.mkdir(full)

    def check_link_target(self, target: str, name: str) -> None:
        """A hard link may only point at a regular file reached through real folders."""
        for folder in parents(target):
            if folder not in self._dirs and not stat.S_ISDIR(_lstat_mode(self.full(folder))):
                raise refuse(name, f"hard link to {target} is not a file inside")
        if not stat.S_ISREG(_lstat_mode(self.full(target))):
            raise refuse(name, f"hard link to {target} is not a file inside")

    def clear(self, entry: ArchiveEntry, linked: bool) -> None:
        """Make way for the member: anything there goes, except a folder for a folder. A
        folder removed through a symlink may be remembered under its real name: then all
        that is remembered goes."""
        full = self.full(entry.path)
        mode = _lstat_mode(full)
        if not mode or (entry.kind == "dir" and stat.S_ISDIR(mode)):
            return
        if stat.S_ISDIR(mode):
            shutil.rmtree(full)
            below = entry.path + "/"
            self._dirs = {
                d for d in self._dirs if not linked and d != entry.path and not d.startswith(below)
            }
        else:
            os.unlink(full)

    def write(
        self, entry: ArchiveEntry, member: tarfile.TarInfo, stream: TarStream, linked: bool
    ) -> None:
        full = self.full(entry.path)
        if entry.kind == "dir":
            if linked or entry.path not in self._dirs:
                os.makedirs(full, exist_ok=True)
            if not linked:
                self._dirs.add(entry.path)
        elif entry.kind == "symlink":
            os.symlink(member.linkname, full)
        elif entry.kind == "hardlink":
            os.link(self.full(member.linkname), full, follow_symlinks=False)
        else:
            fd = os.open(full, _CREATE, 0o600)
            with open(fd, "wb", buffering=0) as out:
                stream.copy(member, out)
                os.fchmod(fd, member.mode)
                os.utime(fd, (member.mtime, member.mtime))


def _lstat_mode(path: str) -> int:
    try:
        return os.lstat(path).st_mode
    except FileNotFoundError:
        return 0


def unpack(
    source: BinaryIO,
    destination: Path,
    *,
    allow_outside_links: bool = False,
    max_unpacked_bytes: int | None = None,
) -> int:
    """Unpack the ``.tar.zst`` read from ``source`` into ``destination`` (created if missing)
    and return the number of non-folder members written.

    Existing files, symlinks and folders in the way of a member are replaced (a folder is
    kept for a folder member). UnsafeArchive (naming the member and why) for anything that
    would land or point outside, or expand past ``max_unpacked_bytes``; CorruptArchive when
    the data cannot be read; OSError as the disk reports it. ``allow_outside_links`` (caches)
    creates symlinks to anywhere, still never writing through one that leads outside. After
    an error the members before the bad one stay unpacked (all inside ``destination``):
    callers treat the folder as failed, not rolled back.
    """
    folder = _Folder(destination)
    stream = TarStream(source, max_unpacked_bytes=max_unpacked_bytes)
    symlinks = SymlinkTracker()
    written = 0
    for member in stream.members():
        entry = check_member(member, allow_outside_links=allow_outside_links)
        if entry is None:
            continue
        symlinks.check(entry, member.name)
        linked = folder.make_parents(entry.path, member.name)
        if entry.kind == "hardlink":
            assert entry.link is not None
            folder.check_link_target(entry.link, member.name)
        folder.clear(entry, linked)
        named = member.replace(name=entry.path, linkname=entry.link or "", deep=False)
        checks = tarfile.data_filter
        if allow_outside_links and entry.kind == "symlink":
            checks = tarfile.tar_filter
        try:
            filtered = checks(named, folder.root)
        except tarfile.FilterError as exc:
            raise refuse(member.name, _filter_problem(exc, member)) from exc
        folder.write(entry, filtered, stream, linked)
        written += entry.kind != "dir"
    return written
