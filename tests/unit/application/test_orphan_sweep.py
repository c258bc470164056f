"""The orphan sweep of the cleanup, on the memory object store with a clock the test moves.

The store dates each object by the same clock, so ages are exact: an object no row names
goes once it is older than the grace, never before; an object a row names stays whatever
its age. The same cutoff discards unfinished uploads (planted in the store's
``unfinished``). The index here is a fake that only answers which keys rows name (the SQL
one has its own tests in tests/integration/sql/test_orphan_sweep.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta

import pytest
from structlog.testing import capture_logs

from ferrous.application import retention as retention_module
from ferrous.application.retention import (
    ORPHAN_GRACE,
    ORPHAN_INTERVAL,
    Freed,
    Retention,
    RetentionPolicy,
)
from ferrous.application.storage_ports import StoredObject
from ferrous.domain.errors import StorageError
from ferrous.infrastructure.storage.memory import InMemoryObjectStore

START = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


class Clock:
    def __init__(self) -> None:
        self.at = START

    def now(self) -> datetime:
        return self.at


class Index:
    """Rows name ``named``; nothing is expired (the sweep is what is under test)."""

    def __init__(self) -> None:
        self.named: set[str] = set()
        self.asked: list[list[str]] = []

    async def delete_expired_artifacts(self, now: datetime, limit: int) -> list[Freed]:
        return []

    async def delete_unused_caches(self, used_before: datetime, limit: int) -> list[Freed]:
        return []

    async def delete_caches_over(
        self, max_total: int, used_before: datetime, limit: int
    ) -> list[Freed]:
        return []

    async def delete_logs_archived_before(self, before: datetime, limit: int) -> list[Freed]:
        return []

    async def delete_logs_over(self, max_total: int, limit: int) -> list[Freed]:
        return []

    async def referenced_objects(self, keys: Sequence[str]) -> set[str]:
        self.asked.append(list(keys))
        return self.named & set(keys)


async def body(size: int) -> AsyncIterator[bytes]:
    yield b"x" * size


class World:
    def __init__(self) -> None:
        self.clock = Clock()
        self.objects = InMemoryObjectStore(self.clock)
        self.index = Index()
        self.retention = Retention(self.index, self.objects, RetentionPolicy(), self.clock)

    async def put(self, key: str, size: int = 10, *, named: bool = False) -> str:
        await self.objects.put(key, body(size))
        if named:
            self.index.named.add(key)
        return key

    def later(self, delta: timedelta) -> None:
        self.clock.at += delta

    def stored(self) -> set[str]:
        return set(self.objects.objects)


@pytest.fixture
def world() -> World:
    return World()


async def test_old_orphans_go_young_ones_and_named_ones_stay(world: World) -> None:
    old_artifact = await world.put("artifacts/p/b/j/archive-1.tar.zst", 100)
    old_cache = await world.put("caches/p/unprotected/k-1.tar.zst", 20)
    old_log = await world.put("logs/p/b/j-1.log.zst", 3)
    named = {
        await world.put("artifacts/p/b/j/archive-2.tar.zst", named=True),
        await world.put("caches/p/protected/k-2.tar.zst", named=True),
        await world.put("logs/p/b/j-2.log.zst", named=True),
    }
    elsewhere = await world.put("other/thing")  # not where rows name objects: never looked at
    world.later(ORPHAN_GRACE - HOUR)
    young = await world.put("artifacts/p/b/j2/archive-3.tar.zst")  # its row may be on the way
    world.later(2 * HOUR)  # the first ones are past the grace now, the young one is not

    with capture_logs() as logs:
        report = await world.retention.run_pass()

    assert (report.swept, report.orphans, report.orphan_bytes) == (True, 3, 123)
    assert world.stored() == named | {elsewhere, young}
    assert {old_artifact, old_cache, old_log}.isdisjoint(world.stored())
    assert report.deleted == {}  # the sweep deletes no rows
    [event] = [e for e in logs if e["event"] == "retention_pass"]
    assert (event["swept"], event["orphans"], event["orphan_bytes"]) == (True, 3, 123)
    deleted = {e["object_key"] for e in logs if e["event"] == "orphan_object_deleted"}
    assert deleted == {old_artifact, old_cache, old_log}
    asked = {key for batch in world.index.asked for key in batch}
    assert young not in asked  # too young to need asking


async def test_the_sweep_runs_once_per_interval(world: World) -> None:
    policy = RetentionPolicy(orphan_grace=HOUR, orphan_interval=6 * HOUR)
    retention = Retention(world.index, world.objects, policy, world.clock)
    first = await world.put("artifacts/p/b/j/archive-1.tar.zst")
    world.later(2 * HOUR)
    assert (await retention.run_pass()).orphans == 1  # a server's first pass sweeps
    assert first not in world.stored()

    second = await world.put("caches/p/unprotected/k.tar.zst")
    world.later(2 * HOUR)  # old enough, but the last sweep was not long ago
    report = await retention.run_pass()
    assert (report.swept, report.orphans) == (False, 0)
    assert second in world.stored()

    world.later(4 * HOUR)  # 6 hours since the first sweep
    report = await retention.run_pass()
    assert (report.swept, report.orphans) == (True, 1)
    assert second not in world.stored()


def test_the_defaults() -> None:
    """A day of grace (any upload and its row are done by then); a sweep a day."""
    assert RetentionPolicy().orphan_grace == ORPHAN_GRACE == timedelta(hours=24)
    assert RetentionPolicy().orphan_interval == ORPHAN_INTERVAL == timedelta(hours=24)


async def test_an_object_of_unknown_age_stays(world: World) -> None:
    world.objects.objects["artifacts/p/b/j/archive-x.tar.zst"] = b"no date"  # put by hand
    world.later(100 * ORPHAN_GRACE)
    report = await world.retention.run_pass()
    assert (report.swept, report.orphans) == (True, 0)
    assert world.stored() == {"artifacts/p/b/j/archive-x.tar.zst"}


async def test_keys_are_looked_up_in_batches(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retention_module, "BATCH", 3)
    orphans = {await world.put(f"logs/p/b/j{n}-1.log.zst") for n in range(7)}
    kept = await world.put("logs/p/b/kept-1.log.zst", named=True)
    world.later(ORPHAN_GRACE + HOUR)
    report = await world.retention.run_pass()
    assert report.orphans == 7
    assert world.stored() == {kept}
    assert [len(batch) for batch in world.index.asked] == [3, 3, 2]
    assert {key for batch in world.index.asked for key in batch} == orphans | {kept}


async def test_a_failing_sweep_ends_quietly_and_waits_an_interval(world: World) -> None:
    class Broken(InMemoryObjectStore):
        async def entries(self, prefix: str) -> AsyncIterator[StoredObject]:
            raise StorageError("the bucket is gone")
            yield  # an async generator that fails when iterated

    broken = Broken(world.clock)
    retention = Retention(world.index, broken, RetentionPolicy(), world.clock)
    with capture_logs() as logs:
        report = await retention.run_pass()
    assert (report.swept, report.orphans) == (False, 0)
    assert [e["event"] for e in logs if e["log_level"] == "error"] == ["orphan_sweep_failed"]
    [event] = [e for e in logs if e["event"] == "retention_pass"]
    assert event["swept"] is False


async def test_abandoned_uploads_are_discarded_with_the_orphans_cutoff(world: World) -> None:
    world.objects.unfinished["artifacts/p/b/j/old"] = START
    world.objects.unfinished["caches/p/s/young"] = START + HOUR
    world.later(ORPHAN_GRACE + HOUR)  # one began the grace and an hour ago, one the grace ago
    with capture_logs() as logs:
        report = await world.retention.run_pass()
    assert (report.swept, report.abandoned_uploads) == (True, 1)
    assert set(world.objects.unfinished) == {"caches/p/s/young"}
    [event] = [e for e in logs if e["event"] == "retention_pass"]
    assert event["abandoned_uploads"] == 1

    world.later(2 * HOUR)  # the young one is old now, but the next sweep is a day away
    assert (await world.retention.run_pass()).abandoned_uploads == 0
    assert set(world.objects.unfinished) == {"caches/p/s/young"}
    world.later(ORPHAN_INTERVAL)
    assert (await world.retention.run_pass()).abandoned_uploads == 1
    assert world.objects.unfinished == {}


async def test_a_failing_discard_does_not_stop_the_orphan_sweep(world: World) -> None:
    class Refusing(InMemoryObjectStore):
        async def discard_abandoned(self, prefix: str, started_before: datetime) -> int:
            raise StorageError("ListMultipartUploads: access denied")

    store = Refusing(world.clock)
    retention = Retention(world.index, store, RetentionPolicy(), world.clock)
    await store.put("logs/p/b/j-1.log.zst", body(5))
    world.later(ORPHAN_GRACE + HOUR)
    with capture_logs() as logs:
        report = await retention.run_pass()
    assert (report.swept, report.orphans, report.abandoned_uploads) == (True, 1, 0)
    assert store.objects == {}
    errors = [e for e in logs if e["log_level"] == "error"]
    assert [e["event"] for e in errors] == ["abandoned_uploads_not_discarded"]
