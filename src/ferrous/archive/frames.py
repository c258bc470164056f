"""Knowing that a zstd stream ended where it should.

zstandard's stream reader treats a source that ends mid-frame as a normal end: a truncated
upload would decompress to a shorter tar, and tar itself accepts an archive cut at a member
boundary. So the compressed bytes pass through :class:`FrameCheck`, which follows the frame
layout of RFC 8878 (headers and block sizes only; block contents are skipped, not decoded)
and raises :class:`CorruptArchive` when the source ends anywhere but between two frames.
"""

from __future__ import annotations

from typing import BinaryIO

from ferrous.domain.errors import CorruptArchive

from .format import BUFFER_SIZE

_ZSTD_MAGIC = 0xFD2FB528
_SKIPPABLE_MAGIC = 0x184D2A50  # the low 4 bits are free
_DICT_ID_BYTES = (0, 1, 2, 4)
_CONTENT_SIZE_BYTES = (0, 2, 4, 8)  # flag 0 with the single-segment bit means 1 byte
_RESERVED_BLOCK = 3
_RLE_BLOCK = 1

# What the next header bytes are.
_MAGIC, _FRAME_DESCRIPTOR, _FRAME_HEADER, _BLOCK, _SKIPPABLE_SIZE = range(5)


class FrameCheck:
    """A pass-through reader over compressed bytes that checks the stream is whole."""

    def __init__(self, source: BinaryIO) -> None:
        self._source = source
        self._state = _MAGIC
        self._need = 4  # header bytes to collect for the current state
        self._header = bytearray()
        self._skip = 0  # payload bytes to pass over before the next header
        self._checksum = False  # the current frame ends with a 4-byte checksum
        self._frames = 0

    def read(self, size: int = -1) -> bytes:
        data = self._source.read(size if size > 0 else BUFFER_SIZE)
        if data:
            self._feed(memoryview(data))
        else:
            self._at_end()
        return data

    def _at_end(self) -> None:
        if self._frames == 0 and self._state == _MAGIC and not self._header:
            raise CorruptArchive("the archive is empty (no zstd data)")
        if self._state != _MAGIC or self._header or self._skip:
            raise CorruptArchive("the archive is cut short (the zstd stream ends mid-frame)")

    def _feed(self, data: memoryview) -> None:
        pos, end = 0, len(data)
        while pos < end:
            if self._skip:
                step = min(self._skip, end - pos)
                self._skip -= step
                pos += step
                continue
            take = min(self._need - len(self._header), end - pos)
            self._header += data[pos : pos + take]
            pos += take
            if len(self._header) == self._need:
                header = bytes(self._header)
                self._header.clear()
                self._parse(header)

    def _parse(self, header: bytes) -> None:
        value = int.from_bytes(header, "little")
        if self._state == _MAGIC:
            if value == _ZSTD_MAGIC:
                self._state, self._need = _FRAME_DESCRIPTOR, 1
            elif value & 0xFFFFFFF0 == _SKIPPABLE_MAGIC:
                self._state, self._need = _SKIPPABLE_SIZE, 4
            elif self._frames == 0:
                raise CorruptArchive("the archive is not zstd-compressed")
            else:
                raise CorruptArchive("the archive has unreadable data after its zstd frames")
        elif self._state == _FRAME_DESCRIPTOR:
            single_segment = bool(value & 0x20)
            self._checksum = bool(value & 0x04)
            content_size = _CONTENT_SIZE_BYTES[value >> 6] or int(single_segment)
            window = 0 if single_segment else 1
            self._state = _FRAME_HEADER
            self._need = window + _DICT_ID_BYTES[value & 0x03] + content_size
        elif self._state == _FRAME_HEADER:
            self._state, self._need = _BLOCK, 3
        elif self._state == _BLOCK:
            last, kind, size = value & 1, (value >> 1) & 3, value >> 3
            if kind == _RESERVED_BLOCK:
                raise CorruptArchive("the archive's zstd data is damaged (reserved block type)")
            self._skip = 1 if kind == _RLE_BLOCK else size
            if last:
                self._skip += 4 if self._checksum else 0
                self._state, self._need = _MAGIC, 4
                self._frames += 1
        else:  # _SKIPPABLE_SIZE
            self._skip = value
            self._state, self._need = _MAGIC, 4
