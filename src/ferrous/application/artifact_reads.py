"""Artifacts for people: the listing, the archive's members, one file out of the archive.

Listings come from the rows (the members were listed at upload), so they never read an
object. One file is cut out of the archive on the server: the archive is downloaded to a
scratch file and its sha256 checked before a byte is sent (a corrupt object answers
``CorruptObject`` cleanly, unlike a streamed download, which can only break off), then the
file is extracted and streamed from an unlinked temporary file, so nothing is left on disk
however the response ends.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from ferrous.application.archive_scan import copy_to_file
from ferrous.application.artifact_ports import ARCHIVE, Artifact
from ferrous.application.artifacts import Artifacts, Download
from ferrous.archive import SUFFIX, ArchiveEntry, extract_file
from ferrous.domain.errors import InvalidValue

CHUNK = 1024 * 1024


async def list_artifacts(artifacts: Artifacts, job_id: str) -> list[Artifact]:
    """The job's unexpired artifacts, and expired ones kept as their ref's latest
    (``NotFound`` for an unknown job)."""
    await artifacts.repository.job(job_id)
    now = artifacts.clock.now()
    return [a for a in await artifacts.repository.list_for_job(job_id) if not a.expired(now)]


async def archive_members(artifacts: Artifacts, job_id: str) -> tuple[list[ArchiveEntry], bool]:
    """The members of the job's ``archive`` and whether the list was cut short."""
    artifact = await artifacts.current(job_id, ARCHIVE)
    return await artifacts.repository.entries(artifact.id), artifact.entries_truncated


def clean_member_path(path: str) -> str:
    """``./a/b`` -> ``a/b``; refuses what can name no member (``..``, absolute, empty)."""
    parts = [p for p in PurePosixPath(path).parts if p not in ("", ".")]
    if not parts or path.startswith("/") or ".." in parts:
        raise InvalidValue(f"{path!r} is not a path inside the artifacts")
    return "/".join(parts)


async def artifact_file(artifacts: Artifacts, job_id: str, path: str) -> Download:
    """One regular file of the job's ``archive`` (``NotFound`` when it has none)."""
    member = clean_member_path(path)
    artifact = await artifacts.current(job_id, ARCHIVE)
    artifacts.scratch.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix="artifact-", suffix=SUFFIX, dir=artifacts.scratch)
    os.close(handle)
    archive = Path(name)
    try:
        await copy_to_file(artifacts.objects, artifact.object_key, artifact.sha256, archive)
        out = await asyncio.to_thread(_extract, archive, member, artifacts.scratch)
    finally:
        archive.unlink(missing_ok=True)
    size = os.fstat(out.fileno()).st_size
    return Download(size=size, sha256="", filename=PurePosixPath(member).name, chunks=_chunks(out))


def _extract(archive: Path, member: str, scratch: Path) -> BinaryIO:
    """The member's bytes in an open temporary file that no longer has a name."""
    out = tempfile.TemporaryFile(dir=scratch)  # noqa: SIM115  # returned open; unlinked already
    try:
        with archive.open("rb") as source:
            extract_file(source, member, out)
        out.seek(0)
    except BaseException:
        out.close()
        raise
    return out


async def _chunks(out: BinaryIO) -> AsyncIterator[bytes]:
    try:
        while chunk := await asyncio.to_thread(out.read, CHUNK):
            yield chunk
    finally:
        out.close()
