"""Looking into an archive without unpacking it: the server validates an upload and stores its
listing with :func:`entries`, and serves one member with :func:`extract_file`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

from ferrous.domain.errors import InvalidValue, NotFound

from .format import ArchiveEntry
from .safety import SymlinkTracker, check_member, clean_path
from .stream import TarStream


def entries(
    source: BinaryIO,
    *,
    allow_outside_links: bool = False,
    max_unpacked_bytes: int | None = None,
) -> Iterator[ArchiveEntry]:
    """Each member of the archive, with the refusals of :func:`unpack` (UnsafeArchive naming
    the member) and CorruptArchive for unreadable data. The archive counts as valid only once
    the iterator is exhausted: the checks of its end (truncation, zstd checksum) come last.

    ``allow_outside_links``: symlinks may point anywhere (caches); a member under one of the
    archive's own symlinks is still refused. ``max_unpacked_bytes``: UnsafeArchive once the
    archive would expand past it."""
    stream = TarStream(source, max_unpacked_bytes=max_unpacked_bytes)
    symlinks = SymlinkTracker()
    for member in stream.members():
        entry = check_member(member, allow_outside_links=allow_outside_links)
        if entry is not None:
            symlinks.check(entry, member.name)
            yield entry


def extract_file(
    source: BinaryIO, path: str, sink: BinaryIO, *, max_unpacked_bytes: int | None = None
) -> int:
    """Copy one regular file's bytes to ``sink`` and return how many; links are not followed.

    ``path`` may be written "a/b" or "./a/b". The first member with that path wins (pack
    never writes a path twice) and the rest of the archive is not read. Past
    ``max_unpacked_bytes`` of decompressed data: UnsafeArchive.
    """
    wanted = clean_path(path.strip())
    if not wanted:
        raise NotFound(f"{path}: not in the archive")
    stream = TarStream(source, max_unpacked_bytes=max_unpacked_bytes)
    symlinks = SymlinkTracker()
    for member in stream.members():
        entry = check_member(member)
        if entry is None:
            continue
        symlinks.check(entry, member.name)
        if entry.path != wanted:
            continue
        if entry.kind == "symlink":
            raise InvalidValue(f"{path}: is a symlink (to {entry.link})")
        if entry.kind == "hardlink":
            raise InvalidValue(f"{path}: is a hard link (to {entry.link})")
        if entry.kind == "dir":
            raise InvalidValue(f"{path}: is a directory")
        return stream.copy(member, sink)
    raise NotFound(f"{path}: not in the archive")
