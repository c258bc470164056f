"""A job's artifacts and caches on the server: ``ArtifactTransfer`` and ``CacheTransfer`` of
an agent, for one job.

The job runs in a thread and calls these blocking methods; the HTTP calls run on the agent's
event loop (``asyncio.run_coroutine_threadsafe``), packing and unpacking in the job's thread.
An archive is packed into a temporary file of the agent's ``work_dir``, then uploaded from it;
a download goes to such a file, checked against its sha256, then unpacked: memory holds a
piece of an archive at a time, never a whole one. Temporary files are always removed.

Unpacking stops at ``max_unpacked_bytes`` (the server's cap, from the claim): the server
checked each archive at upload, but perhaps under a higher cap, and an archive replaced
behind its back together with its recorded sha256 (a compromised store and database) passes
the checksum. Past it ``UnsafeArchive``: a failure for an artifact, a warning for a cache
(their callers decide); the members unpacked before it stay.

``cancel`` (from any thread: the worker, when the job is canceled) stops the transfer in
progress at once, and every later one: they raise ``TransferCanceled``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
import uuid
from collections.abc import Coroutine, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from ferrous.agent.remote.protocol import FileApi
from ferrous.archive import SUFFIX, pack, unpack
from ferrous.domain.errors import FerrousError

T = TypeVar("T")

#: How often a job's thread, waiting for a transfer, looks whether it was canceled.
POLL = 0.2
TEMP_PREFIX = ".transfer-"


class TransferCanceled(FerrousError):
    """The transfer was stopped: the job is canceled."""


def remove_leftovers(folder: Path) -> None:
    """Temporary files an agent that stopped abruptly left behind."""
    for leftover in folder.glob(f"{TEMP_PREFIX}*"):
        leftover.unlink(missing_ok=True)


class ServerFiles:
    """See the module docstring. ``loop`` runs ``client``; ``temp_dir`` holds the archives."""

    def __init__(
        self,
        client: FileApi,
        job_id: str,
        loop: asyncio.AbstractEventLoop,
        temp_dir: Path,
        max_unpacked_bytes: int | None = None,
    ) -> None:
        self._client = client
        self._max_unpacked = max_unpacked_bytes
        self._job_id = job_id
        self._loop = loop
        self._temp_dir = temp_dir
        self._lock = threading.Lock()
        self._canceled = False
        self._pending: concurrent.futures.Future[Any] | None = None

    def cancel(self) -> None:
        with self._lock:
            self._canceled = True
            pending = self._pending
        if pending is not None:
            pending.cancel()

    # -- ArtifactTransfer ----------------------------------------------------------------

    def download(self, source: str, workspace: Path) -> int | None:
        with self._temp() as archive:
            got = self._wait(self._client.download_artifacts(self._job_id, source, archive))
            if got is None:
                return None
            return self._unpack(archive, workspace)

    def upload(self, key: str, workspace: Path, files: Sequence[str], name: str) -> list[str]:
        with self._temp() as archive:
            packed = pack(workspace, files, archive)
            self._wait(
                self._client.upload_artifacts(
                    self._job_id, "archive", archive, packed.sha256, name=name
                )
            )
        return list(packed.skipped)

    def upload_reports(
        self, key: str, kind: str, workspace: Path, files: Sequence[str]
    ) -> list[str]:
        with self._temp() as archive:
            packed = pack(workspace, files, archive)
            reply = self._wait(
                self._client.upload_artifacts(self._job_id, kind, archive, packed.sha256)
            )
        return report_notes(kind, packed.files, reply)

    # -- CacheTransfer -------------------------------------------------------------------

    def restore(self, keys: Sequence[str], workspace: Path) -> str | None:
        for key in keys:
            with self._temp() as archive:
                got = self._wait(self._client.download_cache(self._job_id, key, archive))
                if got is not None:
                    self._unpack(archive, workspace, outside_links=True)
                    return key
        return None

    def save(self, key: str, workspace: Path, files: Sequence[str]) -> None:
        with self._temp() as archive:
            packed = pack(workspace, files, archive, keep_outside_links=True)
            self._wait(self._client.upload_cache(self._job_id, key, archive, packed.sha256))

    # -- the plumbing --------------------------------------------------------------------

    def _unpack(self, archive: Path, workspace: Path, *, outside_links: bool = False) -> int:
        """``outside_links``: caches keep symlinks out of the workspace (a virtualenv's
        interpreter); nothing is written through them either way."""
        self._check()
        workspace.mkdir(parents=True, exist_ok=True)
        with archive.open("rb") as source:
            return unpack(
                source,
                workspace,
                allow_outside_links=outside_links,
                max_unpacked_bytes=self._max_unpacked,
            )

    @contextlib.contextmanager
    def _temp(self) -> Iterator[Path]:
        self._check()
        self._temp_dir.mkdir(parents=True, exist_ok=True)
        path = self._temp_dir / f"{TEMP_PREFIX}{uuid.uuid4().hex}{SUFFIX}"
        try:
            yield path
        finally:
            path.unlink(missing_ok=True)

    def _check(self) -> None:
        if self._canceled:
            raise TransferCanceled

    def _wait(self, call: Coroutine[Any, Any, T]) -> T:
        """Run ``call`` on the event loop and wait for it, unless the job is canceled."""
        with self._lock:
            if self._canceled:
                call.close()
                raise TransferCanceled
            future = asyncio.run_coroutine_threadsafe(call, self._loop)
            self._pending = future
        try:
            while True:
                try:
                    return future.result(timeout=POLL)
                except concurrent.futures.TimeoutError:
                    if self._loop.is_closed():  # the agent is gone: nobody will answer
                        future.cancel()
                        raise TransferCanceled("the agent stopped") from None
                except concurrent.futures.CancelledError:
                    raise TransferCanceled from None
        finally:
            with self._lock:
                self._pending = None


def report_notes(kind: str, files: int, reply: dict[str, Any]) -> list[str]:
    """What the server said of an uploaded report, for the job log."""
    label = "JUnit" if kind == "junit" else kind
    notes = [f"WARNING: {warning}" for warning in reply.get("warnings") or () if warning]
    tests = reply.get("tests")
    if isinstance(tests, dict):
        total, failed = int(tests.get("total") or 0), int(tests.get("failed") or 0)
        notes.append(f"{label} report: {total} tests, {failed} failed")
    else:
        notes.append(f"Uploaded the {label} report ({files} files)")
    return notes
