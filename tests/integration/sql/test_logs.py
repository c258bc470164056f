"""Log store contract: appends at byte offsets, idempotent, with conflicts on gaps or changes."""

from __future__ import annotations

import asyncio
import random

import pytest

from ferrous.domain.errors import Conflict
from tests.integration.sql.conftest import Storage

JOB = "01a219ef-0000-7000-8000-000000000001"


async def append(storage: Storage, offset: int, data: bytes, job_id: str = JOB) -> int:
    async with storage.uow_factory() as uow:
        size = await uow.logs.append(job_id, offset, data)
        await uow.commit()
        return size


async def read(storage: Storage, start: int = 0, end: int | None = None) -> bytes:
    async with storage.uow_factory() as uow:
        return await uow.logs.read(JOB, start, end)


async def test_appends_and_reads(storage: Storage) -> None:
    assert await read(storage) == b""
    assert await append(storage, 0, b"hello ") == 6
    assert await append(storage, 6, b"world\n") == 12
    assert await append(storage, 12, "ünïcode ✓\n".encode()) == 12 + len("ünïcode ✓\n".encode())
    text = b"hello world\n" + "ünïcode ✓\n".encode()
    async with storage.uow_factory() as uow:
        assert await uow.logs.size(JOB) == len(text)
        assert await uow.logs.read(JOB) == text
        assert await uow.logs.read(JOB, 3) == text[3:]
        assert await uow.logs.read(JOB, 3, 9) == text[3:9]  # across a chunk boundary
        assert await uow.logs.read(JOB, 6, 12) == b"world\n"  # exactly one chunk
        assert await uow.logs.read(JOB, 10, 1000) == text[10:]
        assert await uow.logs.read(JOB, 1000) == b""
        assert await uow.logs.read(JOB, 5, 5) == b""
        assert await uow.logs.size("another-job") == 0
        assert await uow.logs.read("another-job") == b""


async def test_a_repeated_chunk_is_accepted_once(storage: Storage) -> None:
    await append(storage, 0, b"abc")
    await append(storage, 3, b"def")
    assert await append(storage, 3, b"def") == 6  # the agent did not get the reply
    assert await append(storage, 0, b"abcdef") == 6  # re-sent as one chunk
    assert await append(storage, 1, b"bc") == 6  # bytes inside a stored chunk
    assert await append(storage, 4, b"efgh") == 8  # overlap, then new bytes
    assert await append(storage, 8, b"") == 8
    assert await read(storage) == b"abcdefgh"


async def test_gaps_and_different_bytes_conflict(storage: Storage) -> None:
    await append(storage, 0, b"abcdef")
    with pytest.raises(Conflict, match="6"):
        await append(storage, 7, b"x")  # a gap: byte 6 is missing
    with pytest.raises(Conflict, match="6"):
        await append(storage, 3, b"xyz")  # other bytes where "def" is
    with pytest.raises(Conflict):
        await append(storage, 4, b"eX12")  # differs inside the overlap
    with pytest.raises(Conflict):
        await append(storage, -1, b"a")
    assert await read(storage) == b"abcdef"


async def test_appends_are_part_of_the_transaction(storage: Storage) -> None:
    await append(storage, 0, b"kept")
    async with storage.uow_factory() as uow:
        assert await uow.logs.append(JOB, 4, b" lost") == 9
        assert await uow.logs.read(JOB) == b"kept lost"  # its own writes
        assert await uow.logs.append(JOB, 9, b"!") == 10
    assert await read(storage) == b"kept"
    assert await append(storage, 4, b" again") == 10


async def test_many_chunks_read_by_range(storage: Storage) -> None:
    rng = random.Random(7)
    text = bytes(rng.randrange(256) for _ in range(5000))
    offset = 0
    async with storage.uow_factory() as uow:
        while offset < len(text):
            size = rng.randrange(1, 120)
            offset = await uow.logs.append(JOB, offset, text[offset : offset + size])
        await uow.commit()
    async with storage.uow_factory() as uow:
        assert await uow.logs.size(JOB) == len(text)
        for _ in range(40):
            start = rng.randrange(len(text))
            end = rng.randrange(start, len(text) + 50)
            assert await uow.logs.read(JOB, start, end) == text[start:end]
        assert await uow.logs.read(JOB) == text


async def test_concurrent_identical_appends(storage: Storage) -> None:
    """Two servers get the same chunk (a retried request): both succeed, stored once."""
    await append(storage, 0, b"0123")
    sizes = await asyncio.wait_for(
        asyncio.gather(*(append(storage, 4, b"4567") for _ in range(5))), 30
    )
    assert sizes == [8] * 5
    assert await read(storage) == b"01234567"
