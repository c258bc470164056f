"""The index of artifacts and caches: which object holds what, for which job or project.

The bytes live in the object store (``storage_ports``); these rows point at them. An upload
writes a new object first, then ``replace`` moves the row in one transaction (and says
which row it replaced, so the caller deletes that object after the commit): a reader that
holds the old row still reads one whole object, and a crash leaves at worst an orphan object
for the cleanup. ``replace`` also checks, in that transaction, that the uploading agent still
holds the job's lease, so a job taken away from it (lease expired, job retried elsewhere)
cannot have its files overwritten by the agent that lost it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from ferrous.archive import ArchiveEntry

ARCHIVE = "archive"  # artifacts:paths
JUNIT = "junit"  # artifacts:reports:junit
KINDS = (ARCHIVE, JUNIT)
PROTECTED = "protected"
UNPROTECTED = "unprotected"
#: at most this many members of an archive are listed in its row (the rest: truncated)
MAX_ENTRIES = 10_000


@dataclass(frozen=True, slots=True, kw_only=True)
class JobContext:
    """What the file routes need to know of a job, read in one query."""

    job_id: str
    build_id: str
    project_id: str
    agent_id: str | None  # who holds the lease now
    status: str
    protected_ref: bool  # the build's: picks the cache scope
    expire_in: str | None  # the job's `artifacts:expire_in`
    project_expire_in: str | None  # the project's default

    @property
    def cache_scope(self) -> str:
        return PROTECTED if self.protected_ref else UNPROTECTED


@dataclass(frozen=True, slots=True, kw_only=True)
class Artifact:
    id: str
    job_id: str
    build_id: str
    project_id: str
    kind: str  # ARCHIVE or JUNIT
    name: str
    object_key: str
    size: int  # stored (compressed) bytes
    sha256: str
    files: int  # members that are not directories
    entries_truncated: bool
    created_at: datetime
    expires_at: datetime | None  # None: kept until deleted
    #: kept past ``expires_at``: its build succeeded on a branch or tag (a retry since does not
    #: undo that) and no newer build of its pipeline and ref has, in a project that keeps
    #: those (read with the row, never stored)
    locked: bool = False

    def expired(self, now: datetime) -> bool:
        return not self.locked and self.expires_at is not None and self.expires_at <= now


@dataclass(frozen=True, slots=True, kw_only=True)
class Cache:
    id: str
    project_id: str
    scope: str  # PROTECTED or UNPROTECTED
    key: str
    object_key: str
    size: int
    sha256: str
    created_at: datetime
    last_used_at: datetime


class ArtifactRepository(Protocol):
    """Artifact rows; each call is its own transaction."""

    async def job(self, job_id: str) -> JobContext:
        """Raises NotFound."""
        ...

    async def replace(
        self, artifact: Artifact, entries: Sequence[ArchiveEntry], *, agent_id: str
    ) -> Artifact | None:
        """Store ``artifact`` (and its listing) in place of the job's row of that kind;
        returns the replaced row. ``Conflict`` unless ``agent_id`` holds the job's lease
        and the job is running."""
        ...

    async def get(self, job_id: str, kind: str) -> Artifact | None:
        """With ``locked`` as it is now."""
        ...

    async def list_for_job(self, job_id: str) -> list[Artifact]:
        """Oldest first, with ``locked`` as it is now."""
        ...

    async def entries(self, artifact_id: str) -> list[ArchiveEntry]:
        """The stored listing, in archive order (``MAX_ENTRIES`` at most)."""
        ...


class CacheRepository(Protocol):
    """Cache rows; each call is its own transaction."""

    async def job(self, job_id: str) -> JobContext:
        """Raises NotFound."""
        ...

    async def get(self, project_id: str, scope: str, key: str) -> Cache | None: ...

    async def touch(self, cache_id: str, now: datetime) -> None:
        """Record a use (the cleanup deletes the least recently used first)."""
        ...

    async def replace(self, cache: Cache, *, job_id: str, agent_id: str) -> Cache | None:
        """Store ``cache`` in place of the project's row of that scope and key; returns the
        replaced row. ``Conflict`` unless ``agent_id`` holds ``job_id``'s lease and the job
        is running."""
        ...
