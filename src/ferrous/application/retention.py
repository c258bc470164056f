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
and that is older than ``orphan_grace``. Only keys of the shapes this server makes
(``object_keys.is_own_key``): another program may write under ``logs/`` of a shared bucket.
And only in a store that this installation alone has claimed (``store_marker``): another
installation's objects have our shapes but rows in another database; the marker also keeps
the time of the last sweep, so a restart or a new cleanup leader does not sweep again.

The grace is what makes it safe alongside uploads: an object is put first and named by its
row right after, so a young object without a row may be one whose row is being written; and
S3 dates a multipart upload from its start, so the grace must outlast the longest upload.
Keys are fresh for every put and never named by a row later, so an old object no row names
now never will be. The sweep lists the whole store and looks every key up, which is why it
runs seldom: orphans are rare and only cost space.

Before the orphans, the sweep has the store discard what puts that never finished left
behind (S3's incomplete multipart uploads, a folder's temporary files: a server killed
mid-put leaves them, nothing lists them, S3 bills them), with the same cutoff: a put that
began longer than the grace ago is over one way or the other. A failure there is logged and
the orphans are swept all the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Protocol

import structlog

from ferrous.application.object_keys import PREFIXES, is_own_key
from ferrous.application.ports import Clock
from ferrous.application.storage_ports import ObjectStore, StoredObject
from ferrous.application.store_marker import MARKER_KEY, StoreMarker, read_marker, write_marker

log = structlog.get_logger(__name__)

BATCH = 500  # rows per DELETE
CACHE_GRACE = timedelta(hours=1)  # a cache used this recently is never deleted
#: Where the objects that rows name live (``artifacts.object_key``, ``caches.object_key``,
#: ``job_logs.object_key``); the sweep looks nowhere else.
ORPHAN_PREFIXES = PREFIXES
ORPHAN_GRACE = timedelta(hours=24)  # an object younger than this is never an orphan
ORPHAN_INTERVAL = timedelta(hours=24)  # between sweeps (the first: after the store's claim)


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

    async def installation_id(self) -> str:
        """This installation's id (made when its database was created), which the store's
        marker must carry before a sweep."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class RetentionPolicy:
    log_max_age: timedelta | None = None  # None: kept whatever their age
    log_max_total_bytes: int = 0  # 0: no cap
    cache_max_age: timedelta | None = None  # None: kept whatever their age
    cache_max_total_bytes: int = 0  # 0: no cap
    orphan_sweep: bool = True  # False: no sweep, no discards (the marker is still kept)
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
        orphan_sweep: bool = True,
        orphan_grace_hours: float = ORPHAN_GRACE / timedelta(hours=1),
        orphan_interval_hours: float = ORPHAN_INTERVAL / timedelta(hours=1),
    ) -> RetentionPolicy:
        """The settings' way: ages in days, 0 meaning "never by age"; the sweep's in hours."""
        return cls(
            log_max_age=timedelta(days=log_max_age_days) if log_max_age_days > 0 else None,
            log_max_total_bytes=log_max_total_bytes,
            cache_max_age=timedelta(days=cache_max_age_days) if cache_max_age_days > 0 else None,
            cache_max_total_bytes=cache_max_total_bytes,
            orphan_sweep=orphan_sweep,
            orphan_grace=timedelta(hours=orphan_grace_hours),
            orphan_interval=timedelta(hours=orphan_interval_hours),
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
    #: other installations found using the store (its marker): no sweep while there are any
    shared_with: tuple[str, ...] = ()

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
        await self._sweep_if_due(report, now)
        log.info(
            "retention_pass",
            deleted=report.deleted,
            freed_bytes=report.freed_bytes,
            objects_left=report.objects_left,
            swept=report.swept,
            orphans=report.orphans,
            orphan_bytes=report.orphan_bytes,
            abandoned_uploads=report.abandoned_uploads,
            shared_with=list(report.shared_with),
        )
        return report

    async def _sweep_if_due(self, report: RetentionReport, now: datetime) -> None:
        """Sweep when the store's marker says it is ours alone and the interval is over
        (see ``store_marker``); keep the marker either way."""
        policy = self._policy
        try:
            ours = await self._index.installation_id()
            marker = await read_marker(self._objects)
            if marker is None:
                await write_marker(self._objects, StoreMarker(installation_id=ours, claimed_at=now))
                log.info("object_store_claimed", installation_id=ours, marker=MARKER_KEY)
                return
            report.shared_with = marker.shared_with(ours)
            if report.shared_with:
                log.warning(
                    "object_store_shared",
                    installation_id=ours,
                    other_installations=list(report.shared_with),
                    marker=MARKER_KEY,
                    advice="the orphan sweep is off until each installation has a bucket or "
                    "prefix of its own (FERROUS_STORAGE_URL) and this marker is deleted",
                )
                if marker.installation_id != ours and ours not in marker.others:
                    others = (*marker.others, ours)  # tells the owner to stop sweeping too
                    await write_marker(self._objects, replace(marker, others=others))
                return
            due = (marker.last_sweep or marker.claimed_at) + policy.orphan_interval
            if not policy.orphan_sweep or now < due:
                return
            await write_marker(self._objects, replace(marker, last_sweep=now))  # failed: waits
        except Exception:
            log.exception("object_store_marker_failed", marker=MARKER_KEY)
            return
        await self._sweep(report, now - policy.orphan_grace)

    async def _sweep(self, report: RetentionReport, older_than: datetime) -> None:
        """Discard the leftovers of puts begun before ``older_than``, then delete the objects
        no row names that were stored before then; an object of unknown age is kept. A failure
        ends its part of the sweep, not the pass."""
        try:
            for prefix in ORPHAN_PREFIXES:
                discarded = await self._objects.discard_abandoned(
                    prefix, older_than, only=is_own_key
                )
                report.abandoned_uploads += discarded
        except Exception:
            log.exception("abandoned_uploads_not_discarded")
        try:
            for prefix in ORPHAN_PREFIXES:
                batch: list[StoredObject] = []
                async for entry in self._objects.entries(prefix):
                    if entry.modified is None or entry.modified >= older_than:
                        continue
                    if not is_own_key(entry.key):  # another program's, in a shared bucket
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
