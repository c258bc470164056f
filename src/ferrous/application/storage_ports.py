"""The object store: where artifacts, caches and archived logs live (a folder or S3).

Objects are written once under a fresh key and never modified: a new version goes under a new
key, then the database row that names it moves, then the old object is deleted. So a reader
holding an older row still reads one whole object, and a crash between the steps leaves at
worst an orphan object for the cleanup, never a row pointing at half an object.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredObject:
    key: str
    size: int  # bytes stored
    sha256: str  # hex digest of the stored bytes; "" when the backend does not know it
    #: When the object was stored (its age, for the orphan sweep); None where not known.
    modified: datetime | None = None


class ObjectStore(Protocol):
    """Bytes by key, streamed both ways: nothing here holds a whole object in memory."""

    async def put(
        self,
        key: str,
        chunks: AsyncIterable[bytes],
        *,
        sha256: str | None = None,
        max_bytes: int | None = None,
    ) -> StoredObject:
        """Stream ``chunks`` into ``key``; an object appears only once complete.

        ``sha256`` given and different from the bytes' -> ``ChecksumMismatch``; more than
        ``max_bytes`` -> ``TooLarge``; either way nothing is stored and an older object under
        ``key`` stays.
        """
        ...

    async def read(
        self,
        key: str,
        *,
        start: int = 0,
        end: int | None = None,
        sha256: str | None = None,
    ) -> AsyncIterator[bytes]:
        """The bytes ``[start, end)`` in chunks of at most 1 MiB.

        Awaiting this checks that the object exists (``NotFound`` otherwise), so an API can
        answer 404 before it starts a response. With ``sha256`` (whole reads only) the
        iterator raises ``CorruptObject`` after the last chunk when the bytes do not match.
        """
        ...

    async def stat(self, key: str) -> StoredObject | None: ...

    async def delete(self, key: str) -> None:
        """Remove ``key``; a missing one is not an error (cleanups repeat after a crash)."""
        ...

    def keys(self, prefix: str) -> AsyncIterator[str]:
        """Every key under ``prefix`` (for sweeps of orphans and for tests)."""
        ...

    def entries(self, prefix: str) -> AsyncIterator[StoredObject]:
        """Every object under ``prefix`` with its size and ``modified`` time (UTC), from
        one listing (no request per object); ``sha256`` is ``""`` unless the listing
        gives it for free. Objects deleted while it runs may or may not appear."""
        ...

    async def discard_abandoned(
        self,
        prefix: str,
        started_before: datetime,
        *,
        only: Callable[[str], bool] | None = None,
    ) -> int:
        """Discard what puts of keys under ``prefix`` (a folder such as ``"artifacts/"``)
        that never finished left behind (a server killed mid-put: S3's incomplete multipart
        uploads, billed but invisible; a folder's temporary files) and that dates from before
        ``started_before``; returns how many went. Only under ``prefix``, and with ``only``
        only uploads of keys it accepts: a bucket may be shared, and another program's
        uploads are not ours to abort. (A folder's temporary files do not tell their key;
        they are the store's own, named ``.tmp-``, so ``only`` does not apply to them.)

        S3 dates an upload from its start, a folder's temporary file from its last write. A
        put still running whose trace dates from before then fails instead of storing its
        object, so the cutoff must be older than any put lasts (the cleanup's orphan grace).
        """
        ...

    async def aclose(self) -> None: ...
