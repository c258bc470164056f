"""Objects as files in a folder: ``root/<key>``.

A put writes ``.tmp-<uuid>`` beside the final path, hashing as it goes, fsyncs it and renames
it over the key (``os.replace`` is atomic), so a reader sees the old object or the new one,
never half of one; a reader that opened the old file keeps reading it after the rename. File
IO runs in worker threads in 1 MiB pieces, so the event loop never waits on the disk.

The sha256 is kept in the extended attribute ``user.ferrous.sha256`` where the file system
has them (``stat`` answers ``""`` elsewhere). Temporary files of a crashed server stay behind
as ``.tmp-*``, until ``discard_abandoned`` deletes those last written before its cutoff;
``keys`` and ``entries`` never list them. An object's ``modified`` time is its file's mtime:
the last write of the put, just before its rename.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import stat
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, NamedTuple, ParamSpec, TypeVar

import structlog

from ferrous.application.storage_ports import StoredObject
from ferrous.domain.errors import CorruptObject, NotFound, StorageError
from ferrous.infrastructure.storage.hashing import (
    CHUNK_SIZE,
    TEMP_PREFIX,
    Tally,
    check_key,
    check_prefix,
    check_range,
    normal_sha256,
)

log = structlog.get_logger(__name__)

XATTR = "user.ferrous.sha256"
KEYS_BATCH = 1000  # keys listed per trip to the worker thread
_MISSING = (FileNotFoundError, IsADirectoryError, NotADirectoryError)
P = ParamSpec("P")
T = TypeVar("T")


class LocalObjectStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    async def put(
        self,
        key: str,
        chunks: AsyncIterable[bytes],
        *,
        sha256: str | None = None,
        max_bytes: int | None = None,
    ) -> StoredObject:
        path = self._path(key)
        tally = Tally(sha256=sha256, max_bytes=max_bytes)
        handle, temp = await _io(f"create a file for {key!r}", _open_temp, path.parent)
        try:
            buffer = bytearray()
            async for chunk in chunks:
                tally.count(len(chunk))
                buffer += chunk
                if len(buffer) >= CHUNK_SIZE:
                    pending, buffer = buffer, bytearray()
                    await _io(f"write {key!r}", _write, handle, pending, tally)
            await _io(f"write {key!r}", _write, handle, buffer, tally)
            digest = tally.verify()
            await _io(f"store {key!r}", _publish, handle, temp, path, digest)
        except BaseException:
            _discard(handle, temp)  # synchronous: it must happen even when cancelled
            raise
        return StoredObject(key=key, size=tally.size, sha256=digest)

    async def read(
        self,
        key: str,
        *,
        start: int = 0,
        end: int | None = None,
        sha256: str | None = None,
    ) -> AsyncIterator[bytes]:
        check_range(start, end, sha256)
        expected = normal_sha256(sha256)
        path = self._path(key)
        try:
            handle, size = await asyncio.to_thread(_open_for_read, path, start)
        except _MISSING as exc:
            raise NotFound(f"no object {key!r}") from exc
        except OSError as exc:
            raise StorageError(f"cannot read object {key!r}: {exc}") from exc
        stop = size if end is None else min(end, size)
        return _stream(handle, key, max(stop - start, 0), expected)

    async def stat(self, key: str) -> StoredObject | None:
        path = self._path(key)
        try:
            return await asyncio.to_thread(_stat, key, path)
        except OSError as exc:
            raise StorageError(f"cannot stat object {key!r}: {exc}") from exc

    async def delete(self, key: str) -> None:
        path = self._path(key)
        await _io(f"delete {key!r}", _delete, path, self.root)

    async def keys(self, prefix: str) -> AsyncIterator[str]:
        """Every key under ``prefix``, in no particular order."""
        check_prefix(prefix)
        found = _walk(self.root, prefix)
        while True:
            batch = await _io("list objects", _take, found, KEYS_BATCH)
            for key in batch:
                yield key
            if len(batch) < KEYS_BATCH:
                return

    async def entries(self, prefix: str) -> AsyncIterator[StoredObject]:
        """Every object under ``prefix``, in no particular order."""
        check_prefix(prefix)
        found = _walk(self.root, prefix)
        while True:
            batch = await _io("list objects", _take_entries, found, self.root, KEYS_BATCH)
            for entry in batch.entries:
                yield entry
            if batch.keys < KEYS_BATCH:
                return

    async def discard_abandoned(
        self,
        prefix: str,
        started_before: datetime,
        *,
        only: Callable[[str], bool] | None = None,
    ) -> int:
        """Temporary files in the folder ``prefix`` names and below, by mtime (a put's file
        sits beside its key): a put that still writes keeps its file young, one stalled for
        longer than the cutoff's age fails at its rename. ``only`` cannot apply: a temporary
        file's name does not tell its key (it is ours by its name, ``.tmp-``)."""
        check_prefix(prefix)
        return await _io(
            "discard abandoned temporary files",
            _discard_abandoned,
            self.root,
            self.root.joinpath(*prefix.split("/")[:-1]),
            started_before.timestamp(),
        )

    async def aclose(self) -> None:
        return None

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*check_key(key).split("/"))


async def _io(action: str, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    try:
        return await asyncio.to_thread(function, *args, **kwargs)
    except OSError as exc:
        raise StorageError(f"local object store: cannot {action}: {exc}") from exc


def _open_temp(folder: Path) -> tuple[BinaryIO, Path]:
    # a delete may prune the (empty) folder between mkdir and open: make it again
    attempts = 5
    while True:
        folder.mkdir(parents=True, exist_ok=True)
        temp = folder / f"{TEMP_PREFIX}{uuid.uuid4().hex}"
        try:
            return open(temp, "xb"), temp  # closed by _publish or _discard
        except FileNotFoundError:
            attempts -= 1
            if not attempts:
                raise


def _write(handle: BinaryIO, data: bytearray, tally: Tally) -> None:
    if data:
        tally.hash(data)
        handle.write(data)


def _publish(handle: BinaryIO, temp: Path, path: Path, digest: str) -> None:
    handle.flush()
    os.fsync(handle.fileno())
    with contextlib.suppress(OSError):  # no xattrs here (tmpfs, some overlays): stat says ""
        os.setxattr(handle.fileno(), XATTR, digest.encode())
    handle.close()
    os.replace(temp, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # the rename itself survives a crash
    finally:
        os.close(directory)


def _discard(handle: BinaryIO, temp: Path) -> None:
    try:
        handle.close()
        temp.unlink(missing_ok=True)
    except OSError:
        log.warning("object_temp_file_left", path=str(temp), exc_info=True)


def _open_for_read(path: Path, start: int) -> tuple[BinaryIO, int]:
    handle = open(path, "rb")  # noqa: SIM115 (closed by _stream)
    try:
        size = os.fstat(handle.fileno()).st_size
        handle.seek(start)
    except BaseException:
        handle.close()
        raise
    return handle, size


async def _stream(
    handle: BinaryIO, key: str, remaining: int, expected: str | None
) -> AsyncIterator[bytes]:
    digest = hashlib.sha256() if expected is not None else None
    try:
        while remaining > 0:
            try:
                data = await asyncio.to_thread(_read_piece, handle, remaining, digest)
            except OSError as exc:
                raise StorageError(f"cannot read object {key!r}: {exc}") from exc
            if not data:
                break  # cut short behind our back; the checksum (if any) will tell
            remaining -= len(data)
            yield data
    finally:
        handle.close()
    if digest is not None and digest.hexdigest() != expected:
        raise CorruptObject(
            f"object {key!r} hashes to sha256 {digest.hexdigest()}, not the {expected} "
            "recorded when it was stored"
        )


def _read_piece(handle: BinaryIO, remaining: int, digest: hashlib._Hash | None) -> bytes:
    data = handle.read(min(CHUNK_SIZE, remaining))
    if digest is not None:
        digest.update(data)
    return data


def _stat(key: str, path: Path) -> StoredObject | None:
    try:
        info = path.stat()
    except _MISSING:
        return None
    if not stat.S_ISREG(info.st_mode):
        return None
    try:
        sha256 = os.getxattr(path, XATTR).decode()
    except OSError:
        sha256 = ""
    return StoredObject(key=key, size=info.st_size, sha256=sha256)


def _delete(path: Path, root: Path) -> None:
    try:
        path.unlink()
    except _MISSING:
        return
    _prune(path.parent, root)


def _discard_abandoned(root: Path, start: Path, before: float) -> int:
    discarded = 0
    for folder, _, files in os.walk(start):
        for name in files:
            if not name.startswith(TEMP_PREFIX):
                continue
            path = Path(folder) / name
            try:
                if path.lstat().st_mtime >= before:
                    continue
                path.unlink()
            except _MISSING:
                continue  # renamed or discarded by its put meanwhile
            except OSError:  # the next sweep tries again
                log.warning("object_temp_file_not_discarded", path=str(path), exc_info=True)
                continue
            discarded += 1
            log.info("object_temp_file_discarded", path=str(path))
            _prune(path.parent, root)  # empty ones only: nothing left in them to walk
    return discarded


def _prune(folder: Path, root: Path) -> None:
    # drop the folders an unlink emptied, so that expired builds leave no trail of them
    while folder != root and root in folder.parents:
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent


def _walk(root: Path, prefix: str) -> Iterator[str]:
    # start at the deepest folder the prefix names, then filter on the whole prefix
    start = root.joinpath(*prefix.split("/")[:-1])
    for folder, dirs, files in os.walk(start):
        dirs.sort()
        relative = Path(folder).relative_to(root).as_posix()
        base = "" if relative == "." else relative + "/"
        for name in sorted(files):
            key = base + name
            if not name.startswith(TEMP_PREFIX) and key.startswith(prefix):
                yield key


def _take(found: Iterator[str], count: int) -> list[str]:
    return [key for key, _ in zip(found, range(count), strict=False)]


class _Entries(NamedTuple):
    keys: int  # listed, including those gone before their stat
    entries: list[StoredObject]


def _take_entries(found: Iterator[str], root: Path, count: int) -> _Entries:
    keys = _take(found, count)
    entries = []
    for key in keys:
        try:
            info = os.lstat(root.joinpath(*key.split("/")))
        except _MISSING:
            continue  # deleted since the walk saw it
        if stat.S_ISREG(info.st_mode):
            modified = datetime.fromtimestamp(info.st_mtime, UTC)
            entries.append(StoredObject(key=key, size=info.st_size, sha256="", modified=modified))
    return _Entries(len(keys), entries)
