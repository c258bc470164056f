"""Store an uploaded archive and check it on the way: one pass over the bytes.

The upload streams into the object store; the same chunks go, through a small bounded
queue, to a thread that reads them as an archive (``ferrous.archive.entries``: the refusals
of unsafe members, the listing). Nothing holds the whole archive, and the server does not
read the object back. A bad archive is still stored to its end first, because only the
store knows whether the bytes match the announced sha256: a transfer that broke them
answers ``ChecksumMismatch`` (send again), not ``CorruptArchive``. A refused archive's
object is deleted before the error leaves.

The scanner gets a thread of its own, not one of the default executor's: the local object
store writes through that executor, and uploads holding all its threads while waiting for
bytes would wait forever for their own writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import threading
from collections.abc import AsyncIterable, AsyncIterator, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import structlog

from ferrous.application.storage_ports import ObjectStore, StoredObject
from ferrous.archive import ArchiveEntry, display_path, entries
from ferrous.domain.errors import CorruptArchive, CorruptObject, UnsafeArchive

log = structlog.get_logger(__name__)

T = TypeVar("T")
QUEUED_CHUNKS = 16  # between the upload and the scanner: a few MiB at most


@dataclass(frozen=True, slots=True, kw_only=True)
class Scan:
    entries: list[ArchiveEntry]  # the first ``limit`` members
    files: int  # members that are not directories, all of them
    truncated: bool  # more members than ``entries`` holds


class _Pipe:
    """A read-only file for the scanner thread, fed chunks by the event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue(QUEUED_CHUNKS)
        self._buffer = bytearray()
        self._eof = False
        self._closed = False

    async def feed(self, chunk: bytes | None, scanning: asyncio.Future[Scan]) -> None:
        """Queue ``chunk`` (None: the end); gives up quietly once the scanner stopped."""
        if self._closed or scanning.done():
            return
        if chunk is None:
            self._closed = True
        try:
            self._queue.put_nowait(chunk)
            return
        except asyncio.QueueFull:
            pass
        putting = asyncio.ensure_future(self._queue.put(chunk))
        either: set[asyncio.Future[Any]] = {putting, scanning}
        try:
            await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        finally:
            putting.cancel()

    def abort(self) -> None:
        """The upload failed: a scanner still reading sees the end (an archive cut short)
        at once, the chunks it did not read yet dropped."""
        if self._closed:
            return
        self._closed = True
        while not self._queue.empty():
            self._queue.get_nowait()
        self._queue.put_nowait(None)

    # --- the scanner thread's side ---

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        while not self._eof and (size < 0 or len(self._buffer) < size):
            chunk = asyncio.run_coroutine_threadsafe(self._queue.get(), self._loop).result()
            if chunk is None:
                self._eof = True
            else:
                self._buffer += chunk
        if size < 0 or size >= len(self._buffer):
            data = bytes(self._buffer)
            self._buffer.clear()
        else:
            data = bytes(self._buffer[:size])
            del self._buffer[:size]
        return data


def in_thread(fn: Callable[[], T], name: str) -> asyncio.Future[T]:
    """Run ``fn`` in a new daemon thread; its result as a future of the running loop."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(result: T | None, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)  # type: ignore[arg-type]  # None only with an error

    def run() -> None:
        try:
            result = fn()
        except BaseException as exc:  # handed to the loop, which re-raises it
            outcome: tuple[T | None, BaseException | None] = (None, exc)
        else:
            outcome = (result, None)
        # the loop may be gone (the upload that waited was abandoned and its server stopped):
        # then nobody is left to tell
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(settle, *outcome)

    threading.Thread(target=run, name=name, daemon=True).start()
    return future


def _scan(source: _Pipe, limit: int, *, outside_links: bool, max_unpacked: int | None) -> Scan:
    kept: list[ArchiveEntry] = []
    files = 0
    truncated = False
    members = entries(
        source,  # type: ignore[arg-type]  # read() is all it uses
        allow_outside_links=outside_links,
        max_unpacked_bytes=max_unpacked,
    )
    for entry in members:
        if entry.kind != "dir":
            files += 1
        if len(kept) < limit:
            # names that are not UTF-8 are listed readable (the database wants text)
            link = None if entry.link is None else display_path(entry.link)
            kept.append(replace(entry, path=display_path(entry.path), link=link))
        else:
            truncated = True
    return Scan(entries=kept, files=files, truncated=truncated)


async def store_checked(
    objects: ObjectStore,
    key: str,
    chunks: AsyncIterable[bytes],
    *,
    sha256: str,
    max_bytes: int,
    limit: int,
    max_unpacked_bytes: int | None = None,
    outside_links: bool = False,
) -> tuple[StoredObject, Scan]:
    """Put ``chunks`` under ``key`` while reading them as an archive.

    ``ChecksumMismatch`` / ``TooLarge`` from the store (nothing stored); ``UnsafeArchive`` /
    ``CorruptArchive`` from the scan (the stored object deleted again), also for an archive
    that expands past ``max_unpacked_bytes`` (a bomb). ``outside_links``: symlinks pointing
    out of the workspace are kept (caches: a virtualenv links to its interpreter); nothing
    is ever written through them.
    """
    pipe = _Pipe(asyncio.get_running_loop())
    scanning = in_thread(
        lambda: _scan(pipe, limit, outside_links=outside_links, max_unpacked=max_unpacked_bytes),
        "archive-scan",
    )

    async def tee() -> AsyncIterator[bytes]:
        async for chunk in chunks:
            if chunk:
                await pipe.feed(chunk, scanning)
                yield chunk

    try:
        stored = await objects.put(key, tee(), sha256=sha256, max_bytes=max_bytes)
    except BaseException:
        pipe.abort()
        scanning.add_done_callback(_quietly)
        raise
    await pipe.feed(None, scanning)
    try:
        scan = await scanning
    except (UnsafeArchive, CorruptArchive):
        await objects.delete(key)
        raise
    return stored, scan


def _quietly(future: asyncio.Future[Scan]) -> None:
    """Retrieve the outcome of a scan nobody waits for any more (no "never retrieved")."""
    if not future.cancelled():
        future.exception()


async def copy_to_file(objects: ObjectStore, key: str, sha256: str, target: Path) -> None:
    """Download ``key`` into ``target``, checking the bytes against ``sha256`` before a
    caller uses them (``CorruptObject``, and no file left)."""
    digest = hashlib.sha256()
    try:
        with target.open("wb") as out:
            async for chunk in await objects.read(key):
                digest.update(chunk)
                await asyncio.to_thread(out.write, chunk)
        if digest.hexdigest() != sha256:
            raise CorruptObject(
                f"stored object {key} does not match its sha256 {sha256} "
                f"(it is {digest.hexdigest()}): the stored archive is corrupt"
            )
    except BaseException:
        target.unlink(missing_ok=True)
        raise
