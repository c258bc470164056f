"""Archived logs as independent zstd frames of about 1 MiB of log each.

One zstd stream would compress a little better, but reading byte 90,000,000 of it means
decompressing everything before. With independent frames and their index
(``[[raw_offset, stored_offset], ...]``, kept in the database row) a byte range reads only the
stored bytes of the frames that overlap it, with one ranged read of the object. Each frame
records its content size, so a frame that decompresses to another length is caught as
corruption, like one that does not decompress at all.

Memory stays bounded by about two frames whatever the log's size: compression buffers one
frame of log, decompression one stored frame and its output. The (de)compression of a frame
runs in a worker thread so the event loop never waits on it.
"""

from __future__ import annotations

import asyncio
import hashlib
from bisect import bisect_left, bisect_right
from collections.abc import AsyncIterable, AsyncIterator, Sequence

import zstandard

from ferrous.application.log_archive import FetchStored, Frame
from ferrous.domain.errors import CorruptObject

FRAME_BYTES = 1024 * 1024  # log bytes per frame
LEVEL = 3


class ZstdLogFrames:
    """The ``LogCodec`` of ``application.log_archive``: framed zstd."""

    def __init__(self, frame_bytes: int = FRAME_BYTES, level: int = LEVEL) -> None:
        if frame_bytes <= 0:
            raise ValueError("frame_bytes must be positive")
        self.frame_bytes = frame_bytes
        self.level = level

    def compress(self, raw: AsyncIterable[bytes]) -> FramedLog:
        return FramedLog(raw, self.frame_bytes, self.level)

    async def read(
        self,
        fetch: FetchStored,
        frames: Sequence[Frame],
        *,
        size: int,
        stored_size: int,
        start: int,
        end: int,
    ) -> AsyncIterator[bytes]:
        """The log bytes ``[start, end)`` of an archived log of ``size`` bytes, in pieces of
        at most a frame; ``fetch(stored_start, stored_end)`` reads the stored bytes of the
        frames needed. ``CorruptObject`` when a frame does not decompress to its length."""
        end = min(end, size)
        if not frames or end <= start:
            return
        raw_offsets = [frame[0] for frame in frames]
        first = max(bisect_right(raw_offsets, start) - 1, 0)
        last = bisect_left(raw_offsets, end) - 1  # the last frame that starts before `end`
        if last < first:
            return
        stored_start = frames[first][1]
        stored_end = frames[last + 1][1] if last + 1 < len(frames) else stored_size
        decompressor = zstandard.ZstdDecompressor()
        buffer = bytearray()
        index = first
        stream = await fetch(stored_start, stored_end)
        position = stored_start  # stored offset of buffer[0]
        async for piece in stream:
            buffer += piece
            while index <= last:
                frame_end = frames[index + 1][1] if index + 1 < len(frames) else stored_size
                if position + len(buffer) < frame_end:
                    break
                stored = bytes(buffer[: frame_end - position])
                del buffer[: frame_end - position]
                position = frame_end
                raw_start = frames[index][0]
                data = await asyncio.to_thread(_decompress, decompressor, stored, index)
                expected = (frames[index + 1][0] if index + 1 < len(frames) else size) - raw_start
                if len(data) != expected:
                    raise CorruptObject(
                        f"frame {index} holds {len(data)} bytes of log, not {expected}"
                    )
                piece_start, piece_end = max(start - raw_start, 0), end - raw_start
                if piece_start < len(data):
                    yield data[piece_start:piece_end]
                index += 1
        if index <= last:
            raise CorruptObject(f"the stored log ends inside frame {index}")


class FramedLog:
    """A log on its way to the store: ``chunks()`` yields the stored bytes (once); afterwards
    ``frames``, ``size`` (log bytes), ``stored_size`` and ``sha256`` (of the stored bytes)
    describe what was written."""

    def __init__(self, raw: AsyncIterable[bytes], frame_bytes: int, level: int) -> None:
        self._raw = raw
        self._frame_bytes = frame_bytes
        self._compressor = zstandard.ZstdCompressor(level=level, write_content_size=True)
        self._digest = hashlib.sha256()
        self._started = False
        self.frames: list[Frame] = []
        self.size = 0
        self.stored_size = 0

    @property
    def sha256(self) -> str:
        return self._digest.hexdigest()

    async def chunks(self) -> AsyncIterator[bytes]:
        if self._started:
            raise RuntimeError("a FramedLog is read once")
        self._started = True
        buffer = bytearray()
        async for data in self._raw:
            buffer += data
            while len(buffer) >= self._frame_bytes:
                frame = bytes(buffer[: self._frame_bytes])
                del buffer[: self._frame_bytes]
                yield await self._frame(frame)
        if buffer:
            yield await self._frame(bytes(buffer))

    async def _frame(self, raw: bytes) -> bytes:
        stored = await asyncio.to_thread(self._compressor.compress, raw)
        self.frames.append((self.size, self.stored_size))
        self.size += len(raw)
        self.stored_size += len(stored)
        self._digest.update(stored)
        return stored


def _decompress(decompressor: zstandard.ZstdDecompressor, stored: bytes, index: int) -> bytes:
    try:
        return decompressor.decompress(stored)
    except zstandard.ZstdError as exc:
        raise CorruptObject(f"frame {index} does not decompress: {exc}") from exc
