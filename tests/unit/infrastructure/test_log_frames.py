"""Framed zstd logs: round trips, ranges that read only their frames, corruption, memory."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from ferrous.application.log_archive import FetchStored
from ferrous.domain.errors import CorruptObject
from ferrous.infrastructure.storage.log_frames import FramedLog, ZstdLogFrames

MiB = 1024 * 1024


async def pieces(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def compress(codec: ZstdLogFrames, data: bytes, piece: int = 700) -> tuple[FramedLog, bytes]:
    framed = codec.compress(pieces(data, piece))
    stored = b"".join([chunk async for chunk in framed.chunks()])
    return framed, stored


def fetcher(stored: bytes, calls: list[tuple[int, int]]) -> FetchStored:
    async def fetch(start: int, end: int) -> AsyncIterator[bytes]:
        calls.append((start, end))
        return pieces(stored[start:end], 1000)

    return fetch


async def read(
    codec: ZstdLogFrames,
    framed: FramedLog,
    stored: bytes,
    start: int,
    end: int,
    calls: list[tuple[int, int]] | None = None,
) -> bytes:
    out = codec.read(
        fetcher(stored, [] if calls is None else calls),
        framed.frames,
        size=framed.size,
        stored_size=framed.stored_size,  # as recorded, whatever `stored` holds now
        start=start,
        end=end,
    )
    return b"".join([piece async for piece in out])


def log_text(lines: int, offset: int = 0) -> bytes:
    return b"".join(
        f"{n:08d} compiling module_{n % 97} ... ok ({n * 7 % 1000} ms)\n".encode()
        for n in range(offset, offset + lines)
    )


async def test_round_trip_with_its_index() -> None:
    codec = ZstdLogFrames(frame_bytes=100)
    data = log_text(20)  # 1,140 bytes: 12 frames
    framed, stored = await compress(codec, data, piece=33)
    assert framed.size == len(data)
    assert framed.stored_size == len(stored)
    assert framed.sha256 == hashlib.sha256(stored).hexdigest()
    assert [raw for raw, _ in framed.frames] == list(range(0, len(data), 100))
    assert framed.frames[0] == (0, 0)
    bounds = [offset for _, offset in framed.frames] + [len(stored)]
    for index, (first, after) in enumerate(itertools.pairwise(bounds)):
        # each frame is a zstd frame of its own that knows its length
        frame = zstandard.ZstdDecompressor().decompress(stored[first:after])
        assert frame == data[index * 100 : index * 100 + 100]
    assert await read(codec, framed, stored, 0, len(data)) == data


async def test_an_empty_log_has_no_frames() -> None:
    codec = ZstdLogFrames()
    framed, stored = await compress(codec, b"")
    assert (framed.frames, framed.size, stored) == ([], 0, b"")
    assert await read(codec, framed, stored, 0, 10) == b""


async def test_a_range_reads_only_the_frames_it_needs() -> None:
    codec = ZstdLogFrames(frame_bytes=1000)
    data = log_text(200)  # 8,940 bytes: 9 frames
    framed, stored = await compress(codec, data)
    offsets = [offset for _, offset in framed.frames]
    calls: list[tuple[int, int]] = []
    assert await read(codec, framed, stored, 2500, 4200, calls) == data[2500:4200]
    assert calls == [(offsets[2], offsets[5])]  # frames 2, 3 and 4 only
    calls.clear()
    assert await read(codec, framed, stored, 3000, 4000, calls) == data[3000:4000]
    assert calls == [(offsets[3], offsets[4])]  # exactly one frame
    calls.clear()
    tail = len(data) - 300
    assert await read(codec, framed, stored, tail, 99_999, calls) == data[tail:]
    assert calls == [(offsets[-1], len(stored))]  # the last frame, to the object's end
    calls.clear()
    assert await read(codec, framed, stored, len(data), len(data) + 5, calls) == b""
    assert await read(codec, framed, stored, 7, 7, calls) == b""
    assert calls == []


@settings(max_examples=300, deadline=None)
@given(
    data=st.binary(max_size=3000),
    frame_bytes=st.integers(min_value=1, max_value=700),
    bounds=st.tuples(st.integers(0, 3200), st.integers(0, 3200)),
)
def test_any_range_equals_the_slice(data: bytes, frame_bytes: int, bounds: tuple[int, int]) -> None:
    start, end = bounds

    async def check() -> None:
        codec = ZstdLogFrames(frame_bytes=frame_bytes)
        framed, stored = await compress(codec, data, piece=frame_bytes + 3)
        assert await read(codec, framed, stored, start, end) == data[start:end]

    asyncio.run(check())


async def test_a_damaged_frame_is_corrupt() -> None:
    codec = ZstdLogFrames(frame_bytes=1000)
    data = log_text(100)
    framed, stored = await compress(codec, data)
    second = framed.frames[1][1]
    damaged = bytearray(stored)
    damaged[second : second + 8] = b"\xff" * 8  # the second frame's magic number and header
    assert await read(codec, framed, bytes(damaged), 0, 900) == data[:900]  # frame 0 is fine
    with pytest.raises(CorruptObject, match="frame 1"):
        await read(codec, framed, bytes(damaged), 0, 2000)


async def test_frames_that_do_not_match_the_index_are_corrupt() -> None:
    codec = ZstdLogFrames(frame_bytes=1000)
    data = log_text(100)
    framed, stored = await compress(codec, data)
    with pytest.raises(CorruptObject, match="ends inside frame"):
        await read(codec, framed, stored[:-10], 0, len(data))
    framed.frames[2] = (framed.frames[2][0] + 1, framed.frames[2][1])  # a wrong raw offset
    with pytest.raises(CorruptObject, match="frame 1 holds 1000 bytes of log, not 1001"):
        await read(codec, framed, stored, 0, len(data))


async def test_memory_stays_bounded_by_a_few_frames(tmp_path: Path) -> None:
    codec = ZstdLogFrames()
    total = 24 * MiB

    async def generated() -> AsyncIterator[bytes]:
        sent, n = 0, 0
        while sent < total:
            piece = log_text(1000, offset=n)  # about 57 KiB, like an agent's chunk
            n += 1000
            sent += len(piece)
            yield piece

    path = tmp_path / "log.zst"
    tracemalloc.start()
    try:
        framed = codec.compress(generated())
        with path.open("wb") as sink:
            async for chunk in framed.chunks():
                sink.write(chunk)
        _, compress_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()

        async def fetch(start: int, end: int) -> AsyncIterator[bytes]:
            async def from_file() -> AsyncIterator[bytes]:
                with path.open("rb") as source:
                    source.seek(start)
                    remaining = end - start
                    while remaining > 0:
                        piece = source.read(min(MiB, remaining))
                        remaining -= len(piece)
                        yield piece

            return from_file()

        seen, last = 0, b""
        async for piece in codec.read(
            fetch,
            framed.frames,
            size=framed.size,
            stored_size=framed.stored_size,
            start=0,
            end=framed.size,
        ):
            seen += len(piece)
            last = piece
        _, read_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert framed.size >= total
    assert seen == framed.size
    assert last.endswith(b"00561999 compiling module_78 ... ok (993 ms)\n")
    assert len(framed.frames) == -(-framed.size // MiB)
    assert compress_peak < 8 * MiB, compress_peak
    assert read_peak < 8 * MiB, read_peak
