"""Archives between a file on disk and an HTTP body, a piece at a time, hashed on the way.

An artifact may be gigabytes: it never sits in memory, only ``CHUNK`` (1 MiB) of it at once.
Disk reads and writes go to a thread, so the agent's event loop (log shipping, heartbeats
of the other jobs) never waits for the disk.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import BinaryIO, NamedTuple

import httpx

CHUNK = 1 << 20
CHECKSUM_HEADER = "X-Checksum-Sha256"


class Downloaded(NamedTuple):
    size: int
    sha256: str  # of the bytes received
    expected: str | None  # what the server's X-Checksum-Sha256 said, if it said


async def file_body(path: Path, chunk: int = CHUNK) -> AsyncIterator[bytes]:
    """The file's bytes in pieces of ``chunk``: a fresh one per attempt of an upload."""
    source = await asyncio.to_thread(path.open, "rb")
    try:
        while piece := await asyncio.to_thread(source.read, chunk):
            yield piece
    finally:
        await asyncio.to_thread(source.close)


async def save_body(response: httpx.Response, target: Path) -> Downloaded:
    """Write a streamed response's body to ``target`` (replaced), hashing as it goes.

    Raises ``httpx.TransportError`` when the body is cut short (the connection dropped, or
    fewer bytes than its ``Content-Length``).
    """
    digest = hashlib.sha256()
    size = 0
    sink = await asyncio.to_thread(target.open, "wb")
    try:
        async for piece in response.aiter_bytes(CHUNK):
            size += len(piece)
            await asyncio.to_thread(_write, sink, digest, piece)
    finally:
        await asyncio.to_thread(sink.close)
    length = response.headers.get("Content-Length")
    if length is not None and length.isdigit() and int(length) != size:
        raise httpx.RemoteProtocolError(f"got {size} of {length} bytes")
    expected = response.headers.get(CHECKSUM_HEADER)
    return Downloaded(size, digest.hexdigest(), expected.strip().lower() if expected else None)


def _write(sink: BinaryIO, digest: hashlib._Hash, piece: bytes) -> None:
    digest.update(piece)  # hashlib lets go of the GIL for big pieces, as writing does
    sink.write(piece)
