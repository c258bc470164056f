"""Which members may be extracted, decided from their names alone.

An archive comes from a job, and a job's files may be hostile (zip-slip): a member must land
inside the destination, and every link it creates must point inside too. The rules here are
stricter than tarfile's ``data`` filter, which resolves paths with ``realpath`` and so depends
on what the disk holds at that moment (and has had bypasses through long symlink chains):

- names: no absolute path, no ``..`` at all (pack never writes one), no devices or fifos;
- symlinks: a relative target whose ``..`` steps all come first and climb no higher than the
  link's own folder. A ``..`` after a name could climb out through another link (``s -> .``,
  ``t -> s/../..``), so it is refused even when the text looks harmless;
- hard links: to another path that passes the name rules;
- nothing is written through a symlink of the archive (``link -> sub`` then ``link/x``:
  :class:`SymlinkTracker`); ``unpack`` also looks at the disk, and writes through a symlink
  found there only when its real target lies inside the destination.

Together these keep every link, and every path reached through links, inside the destination.
Caches relax one rule (``allow_outside_links``): a virtualenv's ``bin/python ->
/usr/bin/python3`` must come back as it was, so symlinks may point anywhere; what is written
through them is still held inside by ``unpack``'s look at the disk.
"""

from __future__ import annotations

import posixpath
import tarfile
from typing import Literal

from ferrous.domain.errors import UnsafeArchive

from .format import ArchiveEntry

_SPECIAL = (tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE)

Escape = Literal["absolute", "climbs out", "dotdot after a name"]


def refuse(entry: str, why: str) -> UnsafeArchive:
    return UnsafeArchive(f"{entry}: {why}")


def clean_path(name: str) -> str | None:
    """The name without "." parts and extra slashes; None when it has a ``..`` part or is
    absolute (the caller says which)."""
    if name.startswith("/"):
        return None
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if ".." in parts:
        return None
    return "/".join(parts)


def _name_problem(name: str) -> str:
    if name.startswith("/"):
        return "absolute path"
    if posixpath.normpath(name).split("/")[0] == "..":
        return "leaves the destination through .."
    return "has a .. in its path"


def link_escape(path: str, target: str) -> Escape | None:
    """How a symlink at ``path`` (clean, relative) to ``target`` could leave the folder it
    is unpacked in, judged from the text alone; None when it cannot."""
    if target.startswith("/"):
        return "absolute"
    parts = [part for part in target.split("/") if part not in ("", ".")]
    climbs = 0
    while climbs < len(parts) and parts[climbs] == "..":
        climbs += 1
    if climbs > path.count("/"):
        return "climbs out"
    if ".." in parts[climbs:]:
        return "dotdot after a name"
    return None


def _symlink_problem(path: str, target: str, allow_outside_links: bool) -> str | None:
    if not target:
        return "symlink with an empty target"
    escape = None if allow_outside_links else link_escape(path, target)
    if escape == "dotdot after a name":
        return f"symlink to {target} has a .. after a name (it could lead outside)"
    if escape:
        return f"symlink to {target} points outside"
    return None


def check_member(
    member: tarfile.TarInfo, *, allow_outside_links: bool = False
) -> ArchiveEntry | None:
    """The member as an entry, or None for the archive's own root folder ("./").

    ``allow_outside_links`` accepts symlinks to anywhere (caches); every other rule stays."""
    name = member.name
    path = clean_path(name)
    if path is None:
        raise refuse(name, _name_problem(name))
    if member.type in _SPECIAL:
        raise refuse(name, "device or fifo")
    if member.isdir():
        return ArchiveEntry(path, 0, "dir") if path else None
    if not path:
        raise refuse(name, "has no name")
    if member.issym():
        problem = _symlink_problem(path, member.linkname, allow_outside_links)
        if problem:
            raise refuse(name, problem)
        return ArchiveEntry(path, 0, "symlink", member.linkname)
    if member.islnk():
        target = clean_path(member.linkname)
        if not target:
            raise refuse(name, f"hard link to {member.linkname} points outside")
        return ArchiveEntry(path, 0, "hardlink", target)
    if member.isreg():
        return ArchiveEntry(path, member.size, "file")
    raise refuse(name, f"unsupported entry type {member.type.decode('latin-1')!r}")


def parents(path: str) -> list[str]:
    """The folders above a path, outermost first: "a/b/c" -> ["a", "a/b"]."""
    parts = path.split("/")[:-1]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


class SymlinkTracker:
    """Remembers the archive's own symlinks, to refuse a later member written through one
    when there is no disk to look at (listing and validating uploads)."""

    def __init__(self) -> None:
        self._links: set[str] = set()

    def check(self, entry: ArchiveEntry, name: str) -> None:
        if self._links:
            for folder in parents(entry.path):
                if folder in self._links:
                    raise refuse(name, f"would write through a symlink ({folder})")
        if entry.kind == "symlink":
            self._links.add(entry.path)
        elif entry.path in self._links:  # replaced by a file or folder
            self._links.discard(entry.path)
