"""The object store contract (``application/storage_ports.ObjectStore``), run on every adapter.

``ObjectStoreContract`` holds the tests; a subclass named ``Test...`` runs them on its
``backend`` fixture: here the real backends of ``conftest.py`` (a folder, S3 on moto), in
tests/unit/infrastructure the memory store. Sizes straddle the S3 part size (8 MiB) so that
both the single PutObject and the multipart path are covered.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from ferrous.application.storage_ports import StoredObject
from ferrous.domain.errors import (
    ChecksumMismatch,
    CorruptObject,
    InvalidValue,
    NotFound,
    StorageError,
    TooLarge,
)
from tests.integration.storage.conftest import Backend

MiB = 1024 * 1024
SMALL = 3 * MiB + 17  # one PutObject on S3
LARGE = 17 * MiB + 5  # three parts on S3
LONG_AGO = datetime(2001, 1, 1, tzinfo=UTC)


async def chunks_of(data: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    for offset in range(0, len(data), size):
        yield data[offset : offset + size]
        await asyncio.sleep(0)  # let concurrent puts interleave


async def failing_after(data: bytes, error: Exception) -> AsyncIterator[bytes]:
    async for chunk in chunks_of(data, MiB):
        yield chunk
    raise error


async def read_all(backend: Backend, key: str, **options: object) -> bytes:
    pieces = [piece async for piece in await backend.store.read(key, **options)]  # type: ignore[arg-type]
    assert all(len(piece) <= MiB for piece in pieces)
    return b"".join(pieces)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class ObjectStoreContract:
    @pytest.mark.parametrize(
        ("size", "chunk"), [(0, 1), (1, 1), (5 * MiB + 3, 4096), (LARGE, 256 * 1024)]
    )
    async def test_put_then_read_gives_the_same_bytes(
        self, backend: Backend, size: int, chunk: int
    ) -> None:
        data = os.urandom(size)
        stored = await backend.store.put("a/b/object.bin", chunks_of(data, chunk))
        assert (stored.key, stored.size, stored.sha256) == ("a/b/object.bin", size, sha(data))
        assert await read_all(backend, "a/b/object.bin") == data
        assert await read_all(backend, "a/b/object.bin", sha256=sha(data)) == data
        info = await backend.store.stat("a/b/object.bin")
        assert info is not None
        assert info.size == size
        assert info.sha256 in {sha(data), ""}

    async def test_stat_knows_an_announced_sha256(self, backend: Backend) -> None:
        for key, size in (("small", SMALL), ("large", LARGE)):
            data = os.urandom(size)
            await backend.store.put(key, chunks_of(data, MiB), sha256=sha(data).upper())
            info = await backend.store.stat(key)
            assert info is not None
            assert info.size == size
            if backend.kind != "local":  # local: only where the file system has xattrs
                assert info.sha256 == sha(data)
        assert await backend.store.stat("missing") is None

    async def test_ranges(self, backend: Backend) -> None:
        data = os.urandom(2 * MiB + 100)
        await backend.store.put("ranged", chunks_of(data))
        assert await read_all(backend, "ranged", start=MiB) == data[MiB:]
        assert await read_all(backend, "ranged", start=10, end=20) == data[10:20]
        assert await read_all(backend, "ranged", start=0, end=1) == data[:1]
        assert (
            await read_all(backend, "ranged", start=len(data) - 5, end=len(data) + 100)
            == (data[-5:])
        )
        assert await read_all(backend, "ranged", start=7, end=7) == b""
        assert await read_all(backend, "ranged", start=len(data)) == b""
        assert await read_all(backend, "ranged", start=len(data) + 10) == b""

    async def test_ranges_of_an_empty_object(self, backend: Backend) -> None:
        await backend.store.put("empty", chunks_of(b""))
        assert await read_all(backend, "empty") == b""
        assert await read_all(backend, "empty", start=0, end=10) == b""
        assert await read_all(backend, "empty", start=3) == b""

    async def test_refuses_bad_ranges(self, backend: Backend) -> None:
        await backend.store.put("x", chunks_of(b"abc"))
        for options in ({"start": -1}, {"start": 2, "end": 1}, {"start": 1, "sha256": sha(b"bc")}):
            with pytest.raises(InvalidValue):
                await backend.store.read("x", **options)  # type: ignore[arg-type]

    async def test_empty_range_of_a_missing_object_is_not_found(self, backend: Backend) -> None:
        with pytest.raises(NotFound):
            await backend.store.read("missing", start=3, end=3)

    async def test_a_replaced_object_stays_whole_for_its_readers(self, backend: Backend) -> None:
        old, new = os.urandom(3 * MiB), os.urandom(2 * MiB)
        await backend.store.put("r", chunks_of(old, MiB))
        reader = await backend.store.read("r", sha256=sha(old))
        first = await anext(reader)
        await backend.store.put("r", chunks_of(new, MiB))
        rest = [piece async for piece in reader]
        assert first + b"".join(rest) == old
        assert await read_all(backend, "r") == new

    @pytest.mark.parametrize("size", [SMALL, LARGE])
    async def test_a_checksum_mismatch_stores_nothing(self, backend: Backend, size: int) -> None:
        old = b"the older object"
        await backend.store.put("k", chunks_of(old))
        with pytest.raises(ChecksumMismatch):
            await backend.store.put("k", chunks_of(os.urandom(size), MiB), sha256="0" * 64)
        assert await read_all(backend, "k") == old
        with pytest.raises(ChecksumMismatch):
            await backend.store.put("fresh", chunks_of(os.urandom(size), MiB), sha256="1" * 64)
        assert await backend.store.stat("fresh") is None
        assert backend.leftovers() == []

    async def test_refuses_a_malformed_sha256(self, backend: Backend) -> None:
        with pytest.raises(InvalidValue):
            await backend.store.put("k", chunks_of(b"x"), sha256="not-a-digest")
        assert await backend.store.stat("k") is None

    @pytest.mark.parametrize("size", [SMALL, LARGE])
    async def test_too_large_stores_nothing(self, backend: Backend, size: int) -> None:
        old = b"the older object"
        await backend.store.put("k", chunks_of(old))
        with pytest.raises(TooLarge):
            await backend.store.put("k", chunks_of(os.urandom(size), MiB), max_bytes=size - 1)
        assert await read_all(backend, "k") == old
        assert backend.leftovers() == []
        exact = os.urandom(size)
        stored = await backend.store.put("k", chunks_of(exact, MiB), max_bytes=size)
        assert stored.size == size
        assert await read_all(backend, "k") == exact

    async def test_reading_a_missing_key_fails_when_awaited(self, backend: Backend) -> None:
        with pytest.raises(NotFound):
            await backend.store.read("no/such/object")
        with pytest.raises(NotFound):
            await backend.store.read("no/such/object", start=5)

    async def test_a_corrupted_object_fails_after_the_last_chunk(self, backend: Backend) -> None:
        data = os.urandom(2 * MiB + 1)
        stored = await backend.store.put("c", chunks_of(data))
        backend.tamper("c", data[:-1] + bytes([data[-1] ^ 1]))
        pieces: list[bytes] = []

        async def consume() -> None:
            async for piece in await backend.store.read("c", sha256=stored.sha256):
                pieces.append(piece)

        with pytest.raises(CorruptObject):
            await consume()
        assert len(b"".join(pieces)) == len(data)
        assert len(await read_all(backend, "c")) == len(data)  # no checksum asked: no check

    async def test_delete(self, backend: Backend) -> None:
        await backend.store.delete("never/stored")
        await backend.store.put("d/e/f", chunks_of(b"gone soon"))
        await backend.store.put("d/e/g", chunks_of(b"stays"))
        await backend.store.delete("d/e/f")
        await backend.store.delete("d/e/f")
        assert await backend.store.stat("d/e/f") is None
        with pytest.raises(NotFound):
            await backend.store.read("d/e/f")
        assert await read_all(backend, "d/e/g") == b"stays"
        await backend.store.delete("d/e/g")
        await backend.store.put("d/e/f", chunks_of(b"again"))  # the emptied folders come back
        assert await read_all(backend, "d/e/f") == b"again"

    async def test_keys_under_a_prefix(self, backend: Backend) -> None:
        for key in ("a/1", "a/2", "a/b/3", "ab/4", "b/5"):
            await backend.store.put(key, chunks_of(key.encode()))

        async def keys(prefix: str) -> set[str]:
            return {key async for key in backend.store.keys(prefix)}

        assert await keys("a/") == {"a/1", "a/2", "a/b/3"}
        assert await keys("a") == {"a/1", "a/2", "a/b/3", "ab/4"}
        assert await keys("a/b") == {"a/b/3"}
        assert await keys("") == {"a/1", "a/2", "a/b/3", "ab/4", "b/5"}
        assert await keys("nothing/") == set()
        with pytest.raises(InvalidValue):
            await keys("../")

    async def test_entries_give_size_and_age_in_one_listing(self, backend: Backend) -> None:
        before = datetime.now(UTC) - timedelta(seconds=5)  # S3 and mtimes: whole seconds
        for key in ("a/1", "a/b/22", "ab/333", "b/4444"):
            await backend.store.put(key, chunks_of(b"x" * len(key)))
        after = datetime.now(UTC) + timedelta(seconds=5)

        async def entries(prefix: str) -> dict[str, StoredObject]:
            return {e.key: e async for e in backend.store.entries(prefix)}

        listed = await entries("a/")
        assert {key: e.size for key, e in listed.items()} == {"a/1": 3, "a/b/22": 6}
        for entry in listed.values():
            assert entry.modified is not None
            assert entry.modified.utcoffset() == timedelta(0)
            assert before <= entry.modified <= after
            assert entry.sha256 in {"", sha(b"x" * entry.size)}
        assert set(await entries("a")) == {"a/1", "a/b/22", "ab/333"}
        assert set(await entries("")) == {key async for key in backend.store.keys("")}
        assert await entries("nothing/") == {}
        await backend.store.delete("a/1")
        assert set(await entries("a/")) == {"a/b/22"}
        with pytest.raises(InvalidValue):
            await entries("../")

    async def test_concurrent_puts_of_one_key_leave_one_whole_object(
        self, backend: Backend
    ) -> None:
        bodies = [bytes([n]) * (9 * MiB if n % 2 else MiB + n) for n in range(4)]
        results = await asyncio.gather(
            *(backend.store.put("same", chunks_of(body, 512 * 1024)) for body in bodies)
        )
        assert [r.size for r in results] == [len(b) for b in bodies]
        assert await read_all(backend, "same") in bodies
        assert backend.leftovers() == []

    @pytest.mark.parametrize("size", [SMALL, LARGE])
    async def test_a_failing_source_leaves_nothing(self, backend: Backend, size: int) -> None:
        await backend.store.put("k", chunks_of(b"older"))
        with pytest.raises(ConnectionResetError):
            await backend.store.put("k", failing_after(os.urandom(size), ConnectionResetError()))
        with pytest.raises(ConnectionResetError):
            await backend.store.put("new", failing_after(os.urandom(size), ConnectionResetError()))
        assert await read_all(backend, "k") == b"older"
        assert await backend.store.stat("new") is None
        assert [key async for key in backend.store.keys("")] == ["k"]
        assert backend.leftovers() == []

    async def test_a_cancelled_put_leaves_nothing(self, backend: Backend) -> None:
        sent = asyncio.Event()

        async def stalls() -> AsyncIterator[bytes]:
            async for chunk in chunks_of(os.urandom(LARGE), MiB):
                yield chunk
            sent.set()
            await asyncio.Event().wait()
            yield b"never"

        put = asyncio.create_task(backend.store.put("k", stalls()))
        await sent.wait()
        put.cancel()
        with pytest.raises(asyncio.CancelledError):
            await put
        assert await backend.store.stat("k") is None
        assert backend.leftovers() == []

    async def test_abandoned_uploads_begun_before_the_cutoff_are_discarded(
        self, backend: Backend
    ) -> None:
        await backend.store.put("a/kept", chunks_of(b"whole"))
        backend.abandon("a/b/cut-short")
        backend.abandon("c/cut-short")
        left = backend.leftovers()
        assert len(left) == 2
        # a cutoff before they began (moto dates every upload 2010-11-10: hence 2001)
        assert await backend.store.discard_abandoned("", LONG_AGO) == 0
        assert backend.leftovers() == left
        soon = datetime.now(UTC) + timedelta(minutes=1)  # after they began
        assert await backend.store.discard_abandoned("c/", soon) == 1  # only under the prefix
        assert len(backend.leftovers()) == 1
        assert await backend.store.discard_abandoned("", soon) == 1
        assert backend.leftovers() == []
        assert await backend.store.discard_abandoned("", soon) == 0
        assert [key async for key in backend.store.keys("")] == ["a/kept"]
        assert await read_all(backend, "a/kept") == b"whole"

    async def test_a_put_whose_upload_was_discarded_fails_and_stores_nothing(
        self, backend: Backend
    ) -> None:
        if backend.kind == "memory":
            pytest.skip("a put in memory leaves nothing to discard")
        sent, release = asyncio.Event(), asyncio.Event()

        async def stalls() -> AsyncIterator[bytes]:
            async for chunk in chunks_of(os.urandom(LARGE), MiB):  # parts sent on S3
                yield chunk
            sent.set()
            await release.wait()

        put = asyncio.create_task(backend.store.put("a/k", stalls()))
        await sent.wait()
        assert len(backend.leftovers()) == 1
        assert (
            await backend.store.discard_abandoned("a/", datetime.now(UTC) + timedelta(minutes=1))
            == 1
        )
        release.set()
        with pytest.raises(StorageError):
            await put
        assert await backend.store.stat("a/k") is None
        assert backend.leftovers() == []

    @pytest.mark.parametrize(
        "key", ["", "/abs", "a/../b", "..", "a//b", "./a", "a/", "a\\b", ".tmp-x", "a/\x00"]
    )
    async def test_refuses_keys_that_could_escape(self, backend: Backend, key: str) -> None:
        with pytest.raises(InvalidValue):
            await backend.store.put(key, chunks_of(b"x"))
        with pytest.raises(InvalidValue):
            await backend.store.read(key)
        with pytest.raises(InvalidValue):
            await backend.store.delete(key)
        assert [k async for k in backend.store.keys("")] == []


class TestObjectStoreContract(ObjectStoreContract):
    """On the real backends of ``conftest.py``."""
