"""What an archive is, for everyone who handles one: the agent packs and unpacks, the server
validates uploads, lists members and serves single files, the CLI verifies downloads.

An archive is a POSIX (PAX) tar compressed with zstd. Tar keeps what a build needs (modes,
mtimes, symlinks) and streams in one pass; zstd at level 3 compresses about as well as gzip -6
at several times the speed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

MEDIA_TYPE = "application/zstd"
SUFFIX = ".tar.zst"

#: Every read and write moves this much at a time: big enough that per-call overhead
#: disappears at 1 GB, small enough that memory stays flat.
BUFFER_SIZE = 1 << 20

EntryKind = Literal["file", "dir", "symlink", "hardlink"]


@dataclass(frozen=True, slots=True)
class ArchiveEntry:
    """One member as stored: ``path`` is normalised ("a/b", never "./a/b/"), ``link`` is a
    symlink's target as written, or a hard link's target path in the archive.

    A name that is not valid UTF-8 (a file named in Latin-1 on disk) comes back with its bad
    bytes as surrogate escapes, the way ``os.listdir`` returns it, so that unpacking writes
    the same bytes. Such a str cannot be encoded as UTF-8: pass it through
    :func:`display_path` before storing it in JSON or a database."""

    path: str
    size: int
    kind: EntryKind
    link: str | None = None


def display_path(path: str) -> str:
    """``path`` with the bytes that are not UTF-8 shown as U+FFFD: safe for JSON, a database
    or a terminal, at the price of no longer naming the exact bytes on disk."""
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


@dataclass(frozen=True, slots=True)
class PackedArchive:
    path: Path
    size: int  # compressed bytes written
    sha256: str  # of the compressed bytes, as uploads and downloads announce it
    files: int  # non-directory entries
    #: Symlinks left out because unpacking would refuse them, one line each for a warning:
    #: "dist/x -> /etc: points outside the workspace".
    skipped: tuple[str, ...] = ()


class HashingWriter:
    """Writes through to ``sink`` while hashing and counting, so the checksum of a file being
    written costs no second pass over it."""

    def __init__(self, sink: BinaryIO) -> None:
        self._sink = sink
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self._hash.update(data)
        self.size += len(data)
        self._sink.write(data)
        return len(data)

    def flush(self) -> None:
        self._sink.flush()

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()


class HashingReader:
    """Reads from ``source`` while hashing and counting: an upload can be validated (e.g. by
    :func:`entries`) and checksummed in the same pass. ``size``/``sha256`` cover the bytes
    read so far; read to the end before trusting them."""

    def __init__(self, source: BinaryIO) -> None:
        self._source = source
        self._hash = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        data = self._source.read(size)
        self._hash.update(data)
        self.size += len(data)
        return data

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()
