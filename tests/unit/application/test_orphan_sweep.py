"""The orphan sweep of the cleanup, on the memory object store with a clock the test moves.

The store dates each object by the same clock, so ages are exact: an object of our shapes
that no row names goes once it is older than the grace, never before; an object a row names
stays whatever its age, and so does anything not of our shapes. The same cutoff discards
unfinished uploads (planted in the store's ``unfinished``). The sweep runs only in a store
whose marker is this installation's alone, and the marker's last sweep paces it across
restarts. The index here is a fake that answers which keys rows name and the installation's
id (the SQL one has its own tests in tests/integration/sql/test_orphan_sweep.py).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from structlog.testing import capture_logs

from ferrous.application import retention as retention_module
from ferrous.application.artifact_ports import ARCHIVE, PROTECTED, UNPROTECTED
from ferrous.application.bootstrap import retention_policy
from ferrous.application.object_keys import artifact_key, cache_key, log_key
from ferrous.application.retention import (
    ORPHAN_GRACE,
    ORPHAN_INTERVAL,
    Freed,
    Retention,
    RetentionPolicy,
    RetentionReport,
)
from ferrous.application.storage_ports import StoredObject
from ferrous.application.store_marker import MARKER_KEY, StoreMarker
from ferrous.domain.errors import StorageError
from ferrous.domain.ids import new_id
from ferrous.infrastructure.settings import load_settings
from ferrous.infrastructure.storage.memory import InMemoryObjectStore

START = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
P, B = new_id(), new_id()
OURS, THEIRS = "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"


class Clock:
    def __init__(self) -> None:
        self.at = START

    def now(self) -> datetime:
        return self.at


class Index:
    """Rows name ``named``; nothing is expired (the sweep is what is under test)."""

    def __init__(self, installation: str = OURS) -> None:
        self.named: set[str] = set()
        self.asked: list[list[str]] = []
        self.installation = installation

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

    async def installation_id(self) -> str:
        return self.installation


async def body(size: int) -> AsyncIterator[bytes]:
    yield b"x" * size


def an_artifact() -> str:
    return artifact_key(P, B, new_id(), ARCHIVE)


def a_cache(scope: str = UNPROTECTED) -> str:
    return cache_key(P, scope, new_id())


def a_log() -> str:
    return log_key(P, B, new_id())


class World:
    def __init__(self) -> None:
        self.clock = Clock()
        self.objects = InMemoryObjectStore(self.clock)
        self.index = Index()
        self.retention = self.server()

    def server(self, policy: RetentionPolicy | None = None, installation: str = OURS) -> Retention:
        """A server's cleanup (a fresh one: what a restart or another leader runs)."""
        index = self.index if installation == self.index.installation else Index(installation)
        index.named = self.index.named
        return Retention(index, self.objects, policy or RetentionPolicy(), self.clock)

    def claim(self, installation: str = OURS, **fields: Any) -> None:
        """The store as an installation claimed it an interval ago (so a sweep is due)."""
        marker = StoreMarker(
            installation_id=installation, claimed_at=self.clock.at - ORPHAN_INTERVAL
        )
        self.objects.objects[MARKER_KEY] = replace(marker, **fields).to_json()

    def marker(self) -> StoreMarker:
        return StoreMarker.from_json(self.objects.objects[MARKER_KEY])

    async def put(self, key: str, size: int = 10, *, named: bool = False) -> str:
        await self.objects.put(key, body(size))
        if named:
            self.index.named.add(key)
        return key

    def later(self, delta: timedelta) -> None:
        self.clock.at += delta

    def stored(self) -> set[str]:
        return set(self.objects.objects) - {MARKER_KEY}


@pytest.fixture
def world() -> World:
    return World()


@pytest.fixture
def claimed(world: World) -> World:
    world.claim()
    return world


async def test_old_orphans_of_our_shapes_go_young_named_and_foreign_ones_stay(
    claimed: World,
) -> None:
    world = claimed
    old_artifact = await world.put(an_artifact(), 100)
    old_cache = await world.put(a_cache(), 20)
    old_log = await world.put(a_log(), 3)
    named = {
        await world.put(an_artifact(), named=True),
        await world.put(a_cache(PROTECTED), named=True),
        await world.put(a_log(), named=True),
    }
    foreign = {  # old and named by no row, but not ours: a shared bucket's other tenants
        await world.put("other/thing"),
        await world.put("logs/access-2026-11-27"),
        await world.put("logs/2026-11-27-10-15-30-ABCDEF0123456789"),
        await world.put("artifacts/p/b/j/archive-1.tar.zst"),
        await world.put(f"caches/{P}/unprotected/key-0123456789abcdef.tar.zst"),
    }
    world.later(ORPHAN_GRACE - HOUR)
    young = await world.put(an_artifact())  # its row may be on the way
    world.later(2 * HOUR)  # the first ones are past the grace now, the young one is not

    with capture_logs() as logs:
        report = await world.retention.run_pass()

    assert (report.swept, report.orphans, report.orphan_bytes) == (True, 3, 123)
    assert world.stored() == named | foreign | {young}
    assert {old_artifact, old_cache, old_log}.isdisjoint(world.stored())
    assert report.deleted == {}  # the sweep deletes no rows
    [event] = [e for e in logs if e["event"] == "retention_pass"]
    assert (event["swept"], event["orphans"], event["orphan_bytes"]) == (True, 3, 123)
    assert event["shared_with"] == []
    deleted = {e["object_key"] for e in logs if e["event"] == "orphan_object_deleted"}
    assert deleted == {old_artifact, old_cache, old_log}
    asked = {key for batch in world.index.asked for key in batch}
    assert asked == named | {old_artifact, old_cache, old_log}  # not young, not foreign


async def test_without_a_marker_the_store_is_claimed_and_swept_an_interval_later(
    world: World,
) -> None:
    orphan = await world.put(a_log())
    world.later(ORPHAN_GRACE + HOUR)
    with capture_logs() as logs:
        report = await world.retention.run_pass()
    assert world.marker() == StoreMarker(installation_id=OURS, claimed_at=world.clock.at)
    assert [e["installation_id"] for e in logs if e["event"] == "object_store_claimed"] == [OURS]
    # time for another installation sharing the store to find the marker and say so
    assert (report.swept, report.orphans) == (False, 0)
    assert orphan in world.stored()
    document = json.loads(world.objects.objects[MARKER_KEY])
    assert document["installation_id"] == OURS
    assert document["last_sweep"] is None

    world.later(ORPHAN_INTERVAL - HOUR)
    assert not (await world.retention.run_pass()).swept
    world.later(HOUR)
    report = await world.retention.run_pass()
    assert (report.swept, report.orphans) == (True, 1)
    assert orphan not in world.stored()
    assert world.marker().last_sweep == world.clock.at


async def test_the_marker_paces_the_sweep_across_restarts(world: World) -> None:
    policy = RetentionPolicy(orphan_grace=HOUR, orphan_interval=6 * HOUR)
    world.claim(claimed_at=START - 6 * HOUR)
    first = await world.put(an_artifact())
    world.later(2 * HOUR)
    assert (await world.server(policy).run_pass()).orphans == 1
    assert first not in world.stored()
    assert world.marker().last_sweep == START + 2 * HOUR

    second = await world.put(a_cache())
    world.later(2 * HOUR)  # old enough, but the last sweep was not long ago
    for _ in range(3):  # restarts, or the cleanup moving to another server
        report = await world.server(policy).run_pass()
        assert (report.swept, report.orphans) == (False, 0)
    assert second in world.stored()

    world.later(4 * HOUR)  # 6 hours since the first sweep
    report = await world.server(policy).run_pass()
    assert (report.swept, report.orphans) == (True, 1)
    assert second not in world.stored()
    assert world.marker().last_sweep == START + 8 * HOUR


async def test_another_installations_store_is_not_swept_and_the_owner_stops_too(
    world: World,
) -> None:
    world.claim(THEIRS)
    theirs = {await world.put(an_artifact()), await world.put(a_log())}
    world.objects.unfinished[a_cache()] = START
    world.later(ORPHAN_GRACE + HOUR)

    with capture_logs() as logs:
        report = await world.retention.run_pass()
        again = await world.retention.run_pass()

    assert (report.swept, report.orphans, report.abandoned_uploads) == (False, 0, 0)
    assert report.shared_with == again.shared_with == (THEIRS,)
    assert world.stored() == theirs
    assert len(world.objects.unfinished) == 1
    assert world.index.asked == []
    warnings = [e for e in logs if e["event"] == "object_store_shared"]
    assert len(warnings) == 2  # one each pass
    assert warnings[0]["log_level"] == "warning"
    assert (warnings[0]["installation_id"], warnings[0]["other_installations"]) == (
        OURS,
        [THEIRS],
    )
    assert "bucket or prefix of its own" in warnings[0]["advice"]
    [event, _] = [e for e in logs if e["event"] == "retention_pass"]
    assert event["shared_with"] == [THEIRS]
    # we said so in the marker, once, so that its owner stops deleting our objects
    assert world.marker().installation_id == THEIRS
    assert world.marker().others == (OURS,)

    owner = world.server(installation=THEIRS)
    world.later(ORPHAN_INTERVAL)
    with capture_logs() as logs:
        report = await owner.run_pass()
    assert (report.swept, report.shared_with) == (False, (OURS,))
    assert world.stored() == theirs
    [warning] = [e for e in logs if e["event"] == "object_store_shared"]
    assert (warning["installation_id"], warning["other_installations"]) == (THEIRS, [OURS])
    assert world.marker().others == (OURS,)

    del world.objects.objects[MARKER_KEY]  # the cure, once each has a store of its own
    await owner.run_pass()
    world.later(ORPHAN_INTERVAL)
    report = await owner.run_pass()
    assert (report.swept, report.orphans, report.shared_with) == (True, 2, ())


async def test_the_sweep_can_be_turned_off_and_the_marker_is_still_kept(world: World) -> None:
    off = RetentionPolicy(orphan_sweep=False)
    orphan = await world.put(a_log())
    world.objects.unfinished[a_cache()] = START
    for _ in range(3):
        world.later(ORPHAN_INTERVAL + ORPHAN_GRACE)
        report = await world.server(off).run_pass()
        assert (report.swept, report.orphans, report.abandoned_uploads) == (False, 0, 0)
    assert orphan in world.stored()
    assert len(world.objects.unfinished) == 1
    assert world.marker().installation_id == OURS  # another installation will see it

    del world.objects.objects[MARKER_KEY]
    world.claim(THEIRS)
    report = await world.server(off).run_pass()
    assert report.shared_with == (THEIRS,)
    assert world.marker().others == (OURS,)  # and its owner learns that the store is shared


async def test_a_marker_that_is_not_one_stops_the_sweep_and_stays(claimed: World) -> None:
    world = claimed
    orphan = await world.put(a_log())
    world.later(ORPHAN_GRACE + HOUR)
    for text in (b"not json", b'{"installation_id": 7}', b'{"installation_id": "x"}', b"[]"):
        world.objects.objects[MARKER_KEY] = text
        with capture_logs() as logs:
            report = await world.retention.run_pass()
        assert not report.swept
        assert world.objects.objects[MARKER_KEY] == text
        errors = [e["event"] for e in logs if e["log_level"] == "error"]
        assert errors == ["object_store_marker_failed"]
    assert orphan in world.stored()


def test_the_defaults() -> None:
    """A day of grace (any upload and its row are done by then); a sweep a day."""
    assert RetentionPolicy().orphan_grace == ORPHAN_GRACE == timedelta(hours=24)
    assert RetentionPolicy().orphan_interval == ORPHAN_INTERVAL == timedelta(hours=24)
    assert RetentionPolicy().orphan_sweep is True
    assert RetentionReport().shared_with == ()


def test_the_settings_reach_the_policy() -> None:
    def policy(**environ: str) -> RetentionPolicy:
        return retention_policy(load_settings(environ))

    default = policy()
    assert (default.orphan_sweep, default.orphan_grace, default.orphan_interval) == (
        True,
        ORPHAN_GRACE,
        ORPHAN_INTERVAL,
    )
    changed = policy(
        FERROUS_ORPHAN_SWEEP="false",
        FERROUS_ORPHAN_GRACE_HOURS="36",
        FERROUS_ORPHAN_INTERVAL_HOURS="0.5",
    )
    assert (changed.orphan_sweep, changed.orphan_grace, changed.orphan_interval) == (
        False,
        timedelta(hours=36),
        timedelta(minutes=30),
    )
    with pytest.raises(Exception, match="FERROUS_ORPHAN_GRACE_HOURS"):
        load_settings({"FERROUS_ORPHAN_GRACE_HOURS": "0.5"})  # shorter than any upload may last


async def test_an_object_of_unknown_age_stays(claimed: World) -> None:
    world = claimed
    key = an_artifact()
    world.objects.objects[key] = b"no date"  # put by hand
    world.later(100 * ORPHAN_GRACE)
    report = await world.retention.run_pass()
    assert (report.swept, report.orphans) == (True, 0)
    assert world.stored() == {key}


async def test_keys_are_looked_up_in_batches(
    claimed: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = claimed
    monkeypatch.setattr(retention_module, "BATCH", 3)
    orphans = {await world.put(a_log()) for _ in range(7)}
    kept = await world.put(a_log(), named=True)
    world.later(ORPHAN_GRACE + HOUR)
    report = await world.retention.run_pass()
    assert report.orphans == 7
    assert world.stored() == {kept}
    assert [len(batch) for batch in world.index.asked] == [3, 3, 2]
    assert {key for batch in world.index.asked for key in batch} == orphans | {kept}


async def test_a_failing_sweep_ends_quietly_and_waits_an_interval(claimed: World) -> None:
    world = claimed

    class Broken(InMemoryObjectStore):
        fail = True

        async def entries(self, prefix: str) -> AsyncIterator[StoredObject]:
            if self.fail:
                raise StorageError("the bucket is gone")
            async for entry in super().entries(prefix):
                yield entry

    broken = Broken(world.clock)
    broken.objects = world.objects.objects
    retention = Retention(world.index, broken, RetentionPolicy(), world.clock)
    with capture_logs() as logs:
        report = await retention.run_pass()
    assert (report.swept, report.orphans) == (False, 0)
    assert [e["event"] for e in logs if e["log_level"] == "error"] == ["orphan_sweep_failed"]
    [event] = [e for e in logs if e["event"] == "retention_pass"]
    assert event["swept"] is False

    broken.fail = False
    world.later(ORPHAN_INTERVAL - HOUR)
    assert not (await retention.run_pass()).swept  # the failed sweep counted as one
    world.later(HOUR)
    assert (await retention.run_pass()).swept


async def test_a_store_that_cannot_be_read_is_not_swept(claimed: World) -> None:
    class Unreachable(InMemoryObjectStore):
        async def stat(self, key: str) -> StoredObject | None:
            raise StorageError("the service does not answer")

    store = Unreachable(claimed.clock)
    await store.put(a_log(), body(5))
    claimed.later(ORPHAN_GRACE + HOUR)
    with capture_logs() as logs:
        report = await Retention(claimed.index, store, RetentionPolicy(), claimed.clock).run_pass()
    assert (report.swept, len(store.objects)) == (False, 1)
    assert [e["event"] for e in logs if e["log_level"] == "error"] == ["object_store_marker_failed"]


async def test_abandoned_uploads_of_our_keys_are_discarded_with_the_orphans_cutoff(
    claimed: World,
) -> None:
    world = claimed
    old, young = an_artifact(), a_cache()
    foreign = "logs/2026-11-27-10-15-30-ABCDEF0123456789"  # another program's upload
    world.objects.unfinished.update({old: START, young: START + HOUR, foreign: START})
    world.later(ORPHAN_GRACE + HOUR)  # one began the grace and an hour ago, one the grace ago
    with capture_logs() as logs:
        report = await world.retention.run_pass()
    assert (report.swept, report.abandoned_uploads) == (True, 1)
    assert set(world.objects.unfinished) == {young, foreign}
    [event] = [e for e in logs if e["event"] == "retention_pass"]
    assert event["abandoned_uploads"] == 1

    world.later(2 * HOUR)  # the young one is old now, but the next sweep is a day away
    assert (await world.retention.run_pass()).abandoned_uploads == 0
    assert set(world.objects.unfinished) == {young, foreign}
    world.later(ORPHAN_INTERVAL)
    assert (await world.retention.run_pass()).abandoned_uploads == 1
    assert set(world.objects.unfinished) == {foreign}


async def test_a_failing_discard_does_not_stop_the_orphan_sweep(claimed: World) -> None:
    world = claimed

    class Refusing(InMemoryObjectStore):
        async def discard_abandoned(
            self, prefix: str, started_before: datetime, **_: object
        ) -> int:
            raise StorageError("ListMultipartUploads: access denied")

    store = Refusing(world.clock)
    store.objects = world.objects.objects  # the marker
    retention = Retention(world.index, store, RetentionPolicy(), world.clock)
    await store.put(a_log(), body(5))
    world.later(ORPHAN_GRACE + HOUR)
    with capture_logs() as logs:
        report = await retention.run_pass()
    assert (report.swept, report.orphans, report.abandoned_uploads) == (True, 1, 0)
    assert set(store.objects) == {MARKER_KEY}
    errors = [e for e in logs if e["log_level"] == "error"]
    assert [e["event"] for e in errors] == ["abandoned_uploads_not_discarded"]
