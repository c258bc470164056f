"""The cleanup: expired artifacts, stale caches, old archived logs and orphan objects leave
the store.

One pass (a singleton across servers, every ``cleanup_interval`` seconds) deletes, in
batches: artifacts past their ``expires_at`` (but not those of each ref's latest successful
build, see ``Artifact.locked``); caches unused for ``cache_max_age_days``, then
the least recently used past ``cache_max_total_bytes``; archived logs older than
``log_max_age_days``, then the oldest past ``log_max_total_bytes``. Never anything of a build
that is not finished (a pending job may still download its artifacts, a retried job appends
to its log), nor a cache used in the last hour (a job may be restoring it right now).

Each batch deletes its rows first, with the conditions checked again in the DELETE, and
commits; only then the objects go. A crash in between leaves orphan objects (no row names
them, nobody reads them), never a row whose object is missing. So does an upload whose row
was never written (a crash between the store's put and the commit).

The orphan sweep removes those: after the pass, at most once per ``orphan_interval``, it
lists ``artifacts/``, ``caches/`` and ``logs/`` and deletes each object that no row names
and that is older than ``orphan_grace``. The grace is what makes it safe alongside uploads:
an object is put first and named by its row right after, so a young object without a row
may be one whose row is being written; and S3 dates a multipart upload from its start, so
the grace must outlast the longest upload. Keys are fresh for every put and never named by
a row later, so an old object no row names now never will be. The sweep lists the whole
store and looks every key up, which is why it runs seldom: orphans are rare and only cost
space.

Before the orphans, the sweep has the store discard what puts that never finished left
behind (S3's incomplete multipart uploads, a folder's temporary files: a server killed
mid-put leaves them, nothing lists them, S3 bills them), with the same cutoff: a put that
began longer than the grace ago is over one way or the other. A failure there is logged and
the orphans are swept all the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

import structlog

from ferrous.application.ports import Clock
from ferrous.application.storage_ports import ObjectStore, StoredObject

log = structlog.get_logger(__name__)

BATCH = 500  # rows per DELETE
CACHE_GRACE = timedelta(hours=1)  # a cache used this recently is never deleted
#: Where the objects that rows name live (``artifacts.object_key``, ``caches.object_key``,
#: ``job_logs.object_key``); the sweep looks nowhere else.
ORPHAN_PREFIXES = ("artifacts/", "caches/", "logs/")
ORPHAN_GRACE = timedelta(hours=24)  # an object younger than this is never an orphan
ORPHAN_INTERVAL = timedelta(hours=24)  # between sweeps (the first: a server's first pass)


@dataclass(frozen=True, slots=True)
class Freed:
    """A deleted row's object: its key and stored bytes."""

    object_key: str
    size: int


class RetentionIndex(Protocol):
    """Deletes rows, at most ``limit`` per call in one transaction, and returns what they
    named; the conditions are checked in the DELETE itself, so a row that changed since it
    was picked (a cache just used) stays."""

    async def delete_expired_artifacts(self, now: datetime, limit: int) -> list[Freed]:
        """Artifacts with ``expires_at < now`` of finished builds, except those of each
        ref's latest successful build in projects that keep them (``Artifact.locked``)."""
        ...

    async def delete_unused_caches(self, used_before: datetime, limit: int) -> list[Freed]:
        """Caches last used before then."""
        ...

    async def delete_caches_over(
        self, max_total: int, used_before: datetime, limit: int
    ) -> list[Freed]:
        """The least recently used caches (among those used before then) while all caches
        together are larger than ``max_total`` bytes."""
        ...

    async def delete_logs_archived_before(self, before: datetime, limit: int) -> list[Freed]:
        """Archived logs of finished builds archived before then."""
        ...

    async def delete_logs_over(self, max_total: int, limit: int) -> list[Freed]:
        """The oldest archived logs of finished builds while all archived logs together
        take more than ``max_total`` stored bytes."""
        ...

    async def referenced_objects(self, keys: Sequence[str]) -> set[str]:
        """Which of ``keys`` (at most ``BATCH``) a row names: an artifact, a cache or an
        archived log, whatever its build's state."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class RetentionPolicy:
    log_max_age: timedelta | None = None  # None: kept whatever their age
    log_max_total_bytes: int = 0  # 0: no cap
    cache_max_age: timedelta | None = None  # None: kept whatever their age
    cache_max_total_bytes: int = 0  # 0: no cap
    orphan_grace: timedelta = ORPHAN_GRACE
    orphan_interval: timedelta = ORPHAN_INTERVAL

    @classmethod
    def from_days(
        cls,
        *,
        log_max_age_days: float,
        log_max_total_bytes: int,
        cache_max_age_days: float,
        cache_max_total_bytes: int,
    ) -> RetentionPolicy:
        """The settings' way: ages in days, 0 meaning "never by age"."""
        return cls(
            log_max_age=timedelta(days=log_max_age_days) if log_max_age_days > 0 else None,
            log_max_total_bytes=log_max_total_bytes,
            cache_max_age=timedelta(days=cache_max_age_days) if cache_max_age_days > 0 else None,
            cache_max_total_bytes=cache_max_total_bytes,
        )


@dataclass(slots=True)
class RetentionReport:
    deleted: dict[str, int] = field(default_factory=dict)  # rows, by kind
    freed_bytes: dict[str, int] = field(default_factory=dict)  # stored bytes, by kind
    objects_left: int = 0  # objects whose deletion failed (orphans now)
    swept: bool = False  # the orphan sweep ran in this pass
    orphans: int = 0  # objects the sweep deleted
    orphan_bytes: int = 0
    abandoned_uploads: int = 0  # unfinished puts' leftovers the sweep discarded

    def add(self, kind: str, freed: list[Freed]) -> None:
        if not freed:
            return
        self.deleted[kind] = self.deleted.get(kind, 0) + len(freed)
        self.freed_bytes[kind] = self.freed_bytes.get(kind, 0) + sum(f.size for f in freed)


class Retention:
    def __init__(
        self, index: RetentionIndex, objects: ObjectStore, policy: RetentionPolicy, clock: Clock
    ) -> None:
        self._index = index
        self._objects = objects
        self._policy = policy
        self._clock = clock
        self._next_sweep: datetime | None = None  # None: at the first pass

    async def run_pass(self) -> RetentionReport:
        now = self._clock.now()
        policy, index = self._policy, self._index
        report = RetentionReport()
        await self._drain(report, "artifacts", lambda n: index.delete_expired_artifacts(now, n))
        recent = now - CACHE_GRACE
        if policy.cache_max_age is not None:
            before = min(now - policy.cache_max_age, recent)
            await self._drain(report, "caches", lambda n: index.delete_unused_caches(before, n))
        if policy.cache_max_total_bytes > 0:
            cap = policy.cache_max_total_bytes
            await self._drain(report, "caches", lambda n: index.delete_caches_over(cap, recent, n))
        if policy.log_max_age is not None:
            archived_before = now - policy.log_max_age
            await self._drain(
                report, "logs", lambda n: index.delete_logs_archived_before(archived_before, n)
            )
        if policy.log_max_total_bytes > 0:
            log_cap = policy.log_max_total_bytes
            await self._drain(report, "logs", lambda n: index.delete_logs_over(log_cap, n))
        if self._next_sweep is None or now >= self._next_sweep:
            self._next_sweep = now + policy.orphan_interval  # a failed sweep waits too
            await self._sweep(report, now - policy.orphan_grace)
        log.info(
            "retention_pass",
            deleted=report.deleted,
            freed_bytes=report.freed_bytes,
            objects_left=report.objects_left,
            swept=report.swept,
            orphans=report.orphans,
            orphan_bytes=report.orphan_bytes,
            abandoned_uploads=report.abandoned_uploads,
        )
        return report

    async def _sweep(self, report: RetentionReport, older_than: datetime) -> None:
        """Discard the leftovers of puts begun before ``older_than``, then delete the objects
        no row names that were stored before then; an object of unknown age is kept. A failure
        ends its part of the sweep, not the pass."""
        try:
            for prefix in ORPHAN_PREFIXES:
                discarded = await self._objects.discard_abandoned(prefix, older_than)
                report.abandoned_uploads += discarded
        except Exception:
            log.exception("abandoned_uploads_not_discarded")
        try:
            for prefix in ORPHAN_PREFIXES:
                batch: list[StoredObject] = []
                async for entry in self._objects.entries(prefix):
                    if entry.modified is None or entry.modified >= older_than:
                        continue
                    batch.append(entry)
                    if len(batch) == BATCH:
                        await self._sweep_batch(report, batch)
                        batch = []
                await self._sweep_batch(report, batch)
        except Exception:
            log.exception("orphan_sweep_failed", orphans=report.orphans)
            return
        report.swept = True

    async def _sweep_batch(self, report: RetentionReport, batch: list[StoredObject]) -> None:
        if not batch:
            return
        named = await self._index.referenced_objects([entry.key for entry in batch])
        for entry in batch:
            if entry.key in named:
                continue
            try:
                await self._objects.delete(entry.key)
            except Exception:  # still an orphan: the next sweep tries again
                log.warning("orphan_object_not_deleted", object_key=entry.key)
                continue
            report.orphans += 1
            report.orphan_bytes += entry.size
            log.info("orphan_object_deleted", object_key=entry.key, size=entry.size)

    async def _drain(self, report: RetentionReport, kind: str, step: _Step) -> None:
        while True:
            freed = await step(BATCH)
            for item in freed:
                try:
                    await self._objects.delete(item.object_key)
                except Exception:  # the row is gone: an orphan object, harmless
                    report.objects_left += 1
                    log.warning("retention_object_not_deleted", object_key=item.object_key)
            report.add(kind, freed)
            if len(freed) < BATCH:
                return


class _Step(Protocol):
    async def __call__(self, limit: int, /) -> list[Freed]: ...
