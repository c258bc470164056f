"""Reading a ``.tar.zst`` once, front to back, in bounded memory.

The compressed bytes go through :class:`FrameCheck` (truncation), zstandard's stream reader
(works without a content size in the frame header, as streaming writers leave it) and tarfile
in stream mode (``r|``: no seeking, so the source may be a socket or an object store read).
Every failure to read becomes :class:`CorruptArchive`.

A few kilobytes of zstd can expand to terabytes of zeros. With ``max_unpacked_bytes`` the
decompressed bytes are counted as tarfile pulls them, and a member whose header announces
data past the limit is refused before any of its data is decompressed: a bomb stops after
at most one buffer past the limit, in bounded memory and time.
"""

from __future__ import annotations

import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, BinaryIO, cast

import zstandard

from ferrous.domain.errors import CorruptArchive, UnsafeArchive

from .format import BUFFER_SIZE
from .frames import FrameCheck

#: Extended headers (long names, PAX records) are read whole into memory by tarfile; a
#: hostile archive could claim gigabytes, so anything past this is refused as corrupt.
MAX_EXTENDED_HEADER = 1 << 20

_EXTENDED_TYPES = frozenset(
    (
        tarfile.XHDTYPE,
        tarfile.XGLTYPE,
        tarfile.SOLARIS_XHDTYPE,
        tarfile.GNUTYPE_LONGNAME,
        tarfile.GNUTYPE_LONGLINK,
    )
)


class _BoundedTarInfo(tarfile.TarInfo):
    @classmethod
    def frombuf(cls, buf: bytes | bytearray, encoding: str, errors: str) -> _BoundedTarInfo:
        info = super().frombuf(buf, encoding, errors)
        if info.type in _EXTENDED_TYPES and info.size > MAX_EXTENDED_HEADER:
            raise CorruptArchive(f"the archive has an extended header of {info.size} bytes")
        return info


class _ForgetfulTarFile(tarfile.TarFile):
    """tarfile keeps every member it has read; a stream of a million entries must not."""

    members: list[tarfile.TarInfo]

    def next(self) -> tarfile.TarInfo | None:
        member = super().next()
        self.members.clear()
        return member


@contextmanager
def readable() -> Iterator[None]:
    """Turn the readers' own errors into the domain's."""
    try:
        yield
    except zstandard.ZstdError as exc:
        raise CorruptArchive(f"the archive's zstd data is damaged: {exc}") from exc
    except tarfile.TarError as exc:
        raise CorruptArchive(f"the archive is not a readable tar: {exc}") from exc
    except EOFError as exc:
        raise CorruptArchive("the archive is cut short") from exc


def too_big(limit: int) -> UnsafeArchive:
    return UnsafeArchive(f"archive expands past {limit} bytes")


class _Counted:
    """The decompressed bytes, counted against the limit as they are read."""

    def __init__(self, source: IO[bytes], limit: int | None) -> None:
        self._source = source
        self._limit = limit
        self.total = 0

    def read(self, size: int = -1) -> bytes:
        data = self._source.read(size if size > 0 else BUFFER_SIZE)
        self.total += len(data)
        if self._limit is not None and self.total > self._limit:
            raise too_big(self._limit)
        return data


class TarStream:
    """One pass over the members; :meth:`copy` reads the current member's bytes."""

    def __init__(self, source: BinaryIO, *, max_unpacked_bytes: int | None = None) -> None:
        self._frames = FrameCheck(source)
        self._limit = max_unpacked_bytes
        self._data = _Counted(
            zstandard.ZstdDecompressor().stream_reader(
                cast(IO[bytes], self._frames),
                read_size=BUFFER_SIZE,
                read_across_frames=True,
                closefd=False,
            ),
            max_unpacked_bytes,
        )
        self._tar: tarfile.TarFile | None = None

    def members(self) -> Iterator[tarfile.TarInfo]:
        """Each member in order; after the last, the rest of the stream is read so that a
        damaged or cut-short end is noticed too."""
        with readable():
            self._tar = _ForgetfulTarFile.open(
                fileobj=cast(BinaryIO, self._data),
                mode="r|",
                bufsize=BUFFER_SIZE,
                tarinfo=_BoundedTarInfo,
            )
            while (member := self._tar.next()) is not None:
                if self._limit is not None and member.offset_data + member.size > self._limit:
                    raise too_big(self._limit)
                yield member
            while self._data.read(BUFFER_SIZE):  # end-of-archive padding, zstd checksum
                pass
            while self._frames.read(BUFFER_SIZE):  # raises unless the last frame is whole
                pass

    def copy(self, member: tarfile.TarInfo, sink: BinaryIO) -> int:
        """Write the current member's bytes to ``sink``; returns how many."""
        assert self._tar is not None, "copy() is for the member members() just yielded"
        with readable():
            data = self._tar.extractfile(member)
            if data is None:
                return 0
            copied = 0
            while chunk := data.read(BUFFER_SIZE):
                sink.write(chunk)
                copied += len(chunk)
            if copied != member.size:
                raise CorruptArchive(f"{member.name}: the archive is cut short")
            return copied
