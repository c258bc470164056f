"""Caches: archives a project's jobs share by key (``cache:key``), per protection scope.

A job reads and writes the caches of its project in its build's scope: ``protected`` when
the build's ref is protected, else ``unprotected``, so a branch anyone can push cannot
poison what a release build restores. A save replaces the key's cache like an artifact
upload (new object, the row moves, the old object deleted after the commit). A restore
stamps ``last_used_at`` (at most once a minute) for the least-recently-used cleanup.
"""

from __future__ import annotations

from collections.abc import AsyncIterable
from datetime import timedelta
from pathlib import PurePosixPath

import structlog

from ferrous.application.archive_scan import store_checked
from ferrous.application.artifact_ports import Cache, CacheRepository
from ferrous.application.artifacts import Download, holds_lease
from ferrous.application.object_keys import cache_key
from ferrous.application.ports import Clock
from ferrous.application.storage_ports import ObjectStore
from ferrous.domain.errors import InvalidValue, NotFound
from ferrous.domain.ids import new_id

log = structlog.get_logger(__name__)

MAX_KEY = 255
TOUCH_EVERY = timedelta(minutes=1)


def check_key(key: str) -> str:
    if not key or len(key) > MAX_KEY or any(ord(c) < 32 or c == "\x7f" for c in key):
        raise InvalidValue(f"a cache key has 1 to {MAX_KEY} characters and no control characters")
    return key


class Caches:
    def __init__(
        self,
        *,
        repository: CacheRepository,
        objects: ObjectStore,
        clock: Clock,
        max_bytes: int,
        max_unpacked_bytes: int | None = None,
    ) -> None:
        self.repository = repository
        self.objects = objects
        self.clock = clock
        self.max_bytes = max_bytes
        self.max_unpacked_bytes = max_unpacked_bytes  # None: no limit (tests)

    async def restore(self, *, agent_id: str, job_id: str, key: str) -> Download:
        """The cache under ``key`` for the job's project and scope; ``NotFound`` when none."""
        check_key(key)
        job = await self.repository.job(job_id)
        holds_lease(job, agent_id)
        cache = await self.repository.get(job.project_id, job.cache_scope, key)
        if cache is None:
            raise NotFound(f"no {job.cache_scope} cache {key!r} in this project")
        chunks = await self.objects.read(cache.object_key, sha256=cache.sha256)
        now = self.clock.now()
        if now - cache.last_used_at >= TOUCH_EVERY:
            await self.repository.touch(cache.id, now)
        return Download(
            size=cache.size,
            sha256=cache.sha256,
            filename=PurePosixPath(cache.object_key).name,
            chunks=chunks,
        )

    async def save(
        self,
        *,
        agent_id: str,
        job_id: str,
        key: str,
        chunks: AsyncIterable[bytes],
        sha256: str,
    ) -> Cache:
        check_key(key)
        job = await self.repository.job(job_id)
        holds_lease(job, agent_id)
        scope = job.cache_scope
        object_key = cache_key(job.project_id, scope, key)
        stored, _ = await store_checked(
            self.objects,
            object_key,
            chunks,
            sha256=sha256,
            max_bytes=self.max_bytes,
            limit=0,
            max_unpacked_bytes=self.max_unpacked_bytes,
            outside_links=True,
        )
        now = self.clock.now()
        cache = Cache(
            id=new_id(),
            project_id=job.project_id,
            scope=scope,
            key=key,
            object_key=object_key,
            size=stored.size,
            sha256=sha256,
            created_at=now,
            last_used_at=now,
        )
        try:
            replaced = await self.repository.replace(cache, job_id=job.job_id, agent_id=agent_id)
        except BaseException:
            await self.objects.delete(object_key)
            raise
        if replaced is not None:
            try:
                await self.objects.delete(replaced.object_key)
            except Exception:
                log.warning(
                    "cache_object_not_deleted", object_key=replaced.object_key, exc_info=True
                )
        log.info("cache_stored", job_id=job_id, scope=scope, key=key, size=stored.size)
        return cache
