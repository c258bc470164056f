"""An object store in a dict, for tests (ours and anyone's who builds on Ferrous CI).

It refuses what the real stores refuse (bad keys, checksum mismatches, the size limit) and
passes the same contract tests; ``objects`` is public so a test can look at or tamper with
the stored bytes, ``modified`` (when each was put, by ``clock``) to age them. A put here
leaves nothing when it does not finish; ``unfinished`` stands for what one leaves elsewhere
(an S3 upload, a temporary file): a test plants entries, ``discard_abandoned`` removes them.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterable, AsyncIterator, Callable
from datetime import UTC, datetime

from ferrous.application.ports import Clock
from ferrous.application.storage_ports import StoredObject
from ferrous.domain.errors import CorruptObject, NotFound
from ferrous.infrastructure.storage.hashing import (
    CHUNK_SIZE,
    Tally,
    check_key,
    check_prefix,
    check_range,
    normal_sha256,
)


class _SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class InMemoryObjectStore:
    def __init__(self, clock: Clock | None = None) -> None:
        self.objects: dict[str, bytes] = {}
        self.modified: dict[str, datetime] = {}
        self.unfinished: dict[str, datetime] = {}  # an upload's key -> when it began
        self.closed = False
        self._clock = clock or _SystemClock()

    async def put(
        self,
        key: str,
        chunks: AsyncIterable[bytes],
        *,
        sha256: str | None = None,
        max_bytes: int | None = None,
    ) -> StoredObject:
        check_key(key)
        tally = Tally(sha256=sha256, max_bytes=max_bytes)
        parts: list[bytes] = []
        async for chunk in chunks:
            tally.add(chunk)
            parts.append(bytes(chunk))
        digest = tally.verify()
        self.objects[key] = b"".join(parts)
        self.modified[key] = self._clock.now()
        return StoredObject(key=key, size=tally.size, sha256=digest)

    async def read(
        self,
        key: str,
        *,
        start: int = 0,
        end: int | None = None,
        sha256: str | None = None,
    ) -> AsyncIterator[bytes]:
        check_key(key)
        check_range(start, end, sha256)
        expected = normal_sha256(sha256)
        data = self.objects.get(key)
        if data is None:
            raise NotFound(f"no object {key!r}")
        return _stream(key, data, start, len(data) if end is None else end, expected)

    async def stat(self, key: str) -> StoredObject | None:
        data = self.objects.get(check_key(key))
        if data is None:
            return None
        return StoredObject(key=key, size=len(data), sha256=hashlib.sha256(data).hexdigest())

    async def delete(self, key: str) -> None:
        self.objects.pop(check_key(key), None)
        self.modified.pop(key, None)

    async def keys(self, prefix: str) -> AsyncIterator[str]:
        check_prefix(prefix)
        for key in sorted(self.objects):
            if key.startswith(prefix):
                yield key

    async def entries(self, prefix: str) -> AsyncIterator[StoredObject]:
        check_prefix(prefix)
        for key in sorted(self.objects):
            data = self.objects.get(key)  # deleted since the listing began: skipped
            if data is not None and key.startswith(prefix):
                modified = self.modified.get(key)  # None for bytes a test set by hand
                yield StoredObject(key=key, size=len(data), sha256="", modified=modified)

    async def discard_abandoned(
        self,
        prefix: str,
        started_before: datetime,
        *,
        only: Callable[[str], bool] | None = None,
    ) -> int:
        check_prefix(prefix)
        abandoned = [
            name
            for name, at in self.unfinished.items()
            if at < started_before and name.startswith(prefix) and (only is None or only(name))
        ]
        for name in abandoned:
            del self.unfinished[name]
        return len(abandoned)

    async def aclose(self) -> None:
        self.closed = True


async def _stream(
    key: str, data: bytes, start: int, end: int, expected: str | None
) -> AsyncIterator[bytes]:
    view = memoryview(data)[start:end]
    for offset in range(0, len(view), CHUNK_SIZE):
        yield bytes(view[offset : offset + CHUNK_SIZE])
    if expected is not None and hashlib.sha256(data).hexdigest() != expected:
        raise CorruptObject(f"object {key!r} does not hash to the recorded sha256 {expected}")
