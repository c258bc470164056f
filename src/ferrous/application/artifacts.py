"""Job artifacts: uploaded by the agent that runs the job, read by later jobs and people.

An upload streams into a new object (checked as an archive on the way, see
``archive_scan``), then the job's row of that kind moves to it in one transaction that also
checks the agent still holds the job's lease, and only then is the replaced object deleted.
A ``junit`` upload's report files are then parsed into test cases (``record_junit``).
Expired artifacts are not served even before the cleanup deletes them, unless they are
kept as their ref's latest (``Artifact.locked``), which the cleanup keeps too.

Reads for people live in ``artifact_reads``; this module is the agent's side.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

import structlog

from ferrous.application.archive_scan import Scan, copy_to_file, store_checked
from ferrous.application.artifact_ports import (
    ARCHIVE,
    JUNIT,
    KINDS,
    MAX_ENTRIES,
    Artifact,
    ArtifactRepository,
    JobContext,
)
from ferrous.application.expiry import expires_at
from ferrous.application.object_keys import artifact_key
from ferrous.application.ports import Clock
from ferrous.application.storage_ports import ObjectStore
from ferrous.archive import SUFFIX, unpack
from ferrous.domain.errors import Conflict, InvalidValue, NotFound
from ferrous.domain.ids import new_id
from ferrous.domain.statuses import JobStatus

log = structlog.get_logger(__name__)

MAX_REPORT_BYTES = 50 * 1024 * 1024  # one JUnit file; bigger ones are skipped with a warning
MAX_REPORTS_BYTES = 256 * 1024 * 1024  # all of one upload's JUnit files together


@dataclass(frozen=True, slots=True)
class TestTotals:
    total: int
    failed: int  # failed and errored


class JunitSummary(Protocol):
    """What ``record_junit`` answers (``application.test_reports.TestReportSummary``)."""

    @property
    def total(self) -> int: ...

    @property
    def failed(self) -> int: ...

    @property
    def warnings(self) -> Sequence[str]: ...


class JunitRecorder(Protocol):
    """``functools.partial(test_reports.record_junit, store)``: replaces the job's test
    cases with those of ``files`` (path, bytes)."""

    async def __call__(
        self,
        *,
        job_id: str,
        build_id: str,
        project_id: str,
        files: Sequence[tuple[str, bytes]],
        now: datetime,
    ) -> JunitSummary: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class UploadedArtifact:
    artifact: Artifact
    warnings: tuple[str, ...] = ()
    tests: TestTotals | None = None  # junit uploads


@dataclass(frozen=True, slots=True, kw_only=True)
class Download:
    """Bytes to send: ``chunks`` must be iterated to the end or closed."""

    size: int
    sha256: str  # of the bytes sent ("" when not known)
    filename: str
    chunks: AsyncIterator[bytes]


def holds_lease(job: JobContext, agent_id: str) -> None:
    """``Conflict`` unless ``agent_id`` runs the job now."""
    if job.agent_id != agent_id or job.status != JobStatus.RUNNING:
        raise Conflict(f"this agent does not hold the lease of job {job.job_id}")


def object_key(job: JobContext, kind: str) -> str:
    return artifact_key(job.project_id, job.build_id, job.job_id, kind)


class Artifacts:
    """The artifacts of jobs, for the agent protocol and (``artifact_reads``) the API."""

    def __init__(
        self,
        *,
        repository: ArtifactRepository,
        objects: ObjectStore,
        clock: Clock,
        scratch: Path,
        max_bytes: int,
        default_expire_in: str,
        record_junit: JunitRecorder | None = None,
        max_unpacked_bytes: int | None = None,
    ) -> None:
        self.repository = repository
        self.objects = objects
        self.clock = clock
        self.scratch = scratch  # temporary files (junit reports, single files)
        self.max_bytes = max_bytes
        self.max_unpacked_bytes = max_unpacked_bytes  # None: no limit (tests)
        self.default_expire_in = default_expire_in
        self.record_junit = record_junit

    async def upload(
        self,
        *,
        agent_id: str,
        job_id: str,
        kind: str,
        name: str,
        chunks: AsyncIterable[bytes],
        sha256: str,
    ) -> UploadedArtifact:
        if kind not in KINDS:
            raise InvalidValue(f"artifact kind {kind!r} is not one of {', '.join(KINDS)}")
        job = await self.repository.job(job_id)
        holds_lease(job, agent_id)
        key = object_key(job, kind)
        stored, scan = await store_checked(
            self.objects,
            key,
            chunks,
            sha256=sha256,
            max_bytes=self.max_bytes,
            limit=MAX_ENTRIES,
            max_unpacked_bytes=self.max_unpacked_bytes,
        )
        now = self.clock.now()
        artifact = Artifact(
            id=new_id(),
            job_id=job.job_id,
            build_id=job.build_id,
            project_id=job.project_id,
            kind=kind,
            name=name,
            object_key=key,
            size=stored.size,
            sha256=sha256,
            files=scan.files,
            entries_truncated=scan.truncated,
            created_at=now,
            expires_at=expires_at(
                now,
                job.expire_in,
                job.project_expire_in,
                self.default_expire_in,
                job_id=job.job_id,
            ),
        )
        try:
            replaced = await self.repository.replace(artifact, scan.entries, agent_id=agent_id)
        except BaseException:
            await self.objects.delete(key)
            raise
        if replaced is not None:
            await self._forget(replaced.object_key)
        log.info(
            "artifact_stored",
            job_id=job.job_id,
            kind=kind,
            size=stored.size,
            files=scan.files,
            expires_at=artifact.expires_at,
        )
        if kind != JUNIT:
            return UploadedArtifact(artifact=artifact)
        return await self._record_junit(job, artifact, scan)

    async def for_agent(self, *, agent_id: str, job_id: str, source_job_id: str) -> Download:
        """The ``archive`` of ``source_job_id`` for the agent running ``job_id`` (a job of
        the same build, as ``needs``/``dependencies`` name them)."""
        job = await self.repository.job(job_id)
        holds_lease(job, agent_id)
        source = await self.repository.job(source_job_id)
        if source.build_id != job.build_id:
            raise NotFound(f"job {source_job_id} is not in the build of job {job_id}")
        return await self.download(source_job_id, ARCHIVE)

    async def current(self, job_id: str, kind: str) -> Artifact:
        """The job's artifact of ``kind``; ``NotFound`` when none or expired (and not
        kept as its ref's latest)."""
        artifact = await self.repository.get(job_id, kind)
        if artifact is None or artifact.expired(self.clock.now()):
            raise NotFound(f"job {job_id} has no {kind} artifacts")
        return artifact

    async def download(self, job_id: str, kind: str) -> Download:
        """The stored archive, streamed; the chunks end in ``CorruptObject`` when the
        bytes do not match the recorded sha256 (too late for a clean error: clients check
        ``sha256``)."""
        artifact = await self.current(job_id, kind)
        chunks = await self.objects.read(artifact.object_key, sha256=artifact.sha256)
        return Download(
            size=artifact.size,
            sha256=artifact.sha256,
            filename=f"{artifact.name}{SUFFIX}",
            chunks=chunks,
        )

    async def _forget(self, key: str) -> None:
        """Delete a replaced object; a failure leaves an orphan for the cleanup."""
        try:
            await self.objects.delete(key)
        except Exception:
            log.warning("artifact_object_not_deleted", object_key=key, exc_info=True)

    async def _record_junit(
        self, job: JobContext, artifact: Artifact, scan: Scan
    ) -> UploadedArtifact:
        warnings: list[str] = []
        if scan.truncated:
            warnings.append(f"only the first {MAX_ENTRIES} report files were read")
        if self.record_junit is None:
            log.warning("junit_not_recorded", job_id=job.job_id, reason="no test case store")
            return UploadedArtifact(artifact=artifact, warnings=tuple(warnings))
        files = await self._report_files(artifact, scan, warnings)
        summary = await self.record_junit(
            job_id=job.job_id,
            build_id=job.build_id,
            project_id=job.project_id,
            files=files,
            now=self.clock.now(),
        )
        warnings.extend(summary.warnings)
        return UploadedArtifact(
            artifact=artifact,
            warnings=tuple(warnings),
            tests=TestTotals(total=summary.total, failed=summary.failed),
        )

    async def _report_files(
        self, artifact: Artifact, scan: Scan, warnings: list[str]
    ) -> list[tuple[str, bytes]]:
        """The report files' bytes: the archive unpacked in a scratch folder, each file
        read (up to the caps)."""
        self.scratch.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix="junit-", dir=self.scratch))
        try:
            archive = folder / f"reports{SUFFIX}"
            await copy_to_file(self.objects, artifact.object_key, artifact.sha256, archive)
            root = folder / "files"
            root.mkdir()

            def unpacked() -> None:
                with archive.open("rb") as source:
                    unpack(source, root, max_unpacked_bytes=self.max_unpacked_bytes)

            await asyncio.to_thread(unpacked)
            return await asyncio.to_thread(_read_reports, root, scan, warnings)
        finally:
            await asyncio.to_thread(shutil.rmtree, folder, True)


def _read_reports(root: Path, scan: Scan, warnings: list[str]) -> list[tuple[str, bytes]]:
    files: list[tuple[str, bytes]] = []
    total = 0
    for entry in scan.entries:
        if entry.kind != "file":
            continue
        if entry.size > MAX_REPORT_BYTES:
            warnings.append(f"{entry.path}: skipped, larger than {MAX_REPORT_BYTES} bytes")
            continue
        if total + entry.size > MAX_REPORTS_BYTES:
            warnings.append(f"{entry.path}: skipped, the reports exceed {MAX_REPORTS_BYTES} bytes")
            continue
        total += entry.size
        files.append((entry.path, (root / entry.path).read_bytes()))
    return files
