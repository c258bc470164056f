"""Schedules on every backend: the repository contract, the read side, and what builds keep.

Runs on SQLite, PostgreSQL and memory. The compare-and-set on ``version`` is what makes a tick
fire once; ``test_schedule_firing.py`` races two firers on it.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from ferrous.application.ports import StaleState
from ferrous.domain.auto_cancel import AutoCancel
from ferrous.domain.build import Build
from ferrous.domain.errors import NotFound
from ferrous.domain.schedule import Schedule
from ferrous.domain.statuses import When
from tests.integration.sql.conftest import Storage
from tests.integration.sql.factories import T0, at, job, new_build, seed_pipeline, store_build


def schedule_of(pipeline_id: str, project_id: str, **fields: object) -> Schedule:
    values: dict[str, object] = {
        "project_id": project_id,
        "pipeline_id": pipeline_id,
        "cron": "0 3 * * *",
        "timezone": "Europe/Paris",
        "now": T0,
    }
    values.update(fields)
    return Schedule.create(**values)  # type: ignore[arg-type]


async def add(storage: Storage, *schedules: Schedule) -> None:
    async with storage.uow_factory() as uow:
        for schedule in schedules:
            await uow.schedules.add(schedule)
        await uow.commit()


async def test_round_trip_and_events(storage: Storage) -> None:
    project, pipeline = await seed_pipeline(storage.uow_factory)
    schedule = schedule_of(
        pipeline.id,
        project.id,
        ref="release",
        variables={"Z": "1", "A": "2"},
        description="nightly",
    )
    await add(storage, schedule)
    assert schedule.events == []

    async with storage.uow_factory() as uow:
        loaded = await uow.schedules.get(schedule.id)
    assert loaded == schedule
    assert list(loaded.variables) == ["Z", "A"]
    assert loaded.next_run_at is not None
    assert loaded.next_run_at.utcoffset() == timedelta(0)
    names = [m.name for m in await storage.unpublished()]
    assert names[-1] == "ScheduleCreated"


async def test_save_is_a_compare_and_set(storage: Storage) -> None:
    project, pipeline = await seed_pipeline(storage.uow_factory)
    schedule = schedule_of(pipeline.id, project.id)
    await add(storage, schedule)
    due = schedule.next_run_at
    assert due is not None

    async with storage.uow_factory() as first, storage.uow_factory() as second:
        mine = await first.schedules.get(schedule.id)
        theirs = await second.schedules.get(schedule.id)
        mine.fire(due)
        mine.ran("build-1", due)
        await first.schedules.save(mine)
        await first.commit()
        theirs.fire(due)
        with pytest.raises(StaleState):
            await second.schedules.save(theirs)

    async with storage.uow_factory() as uow:
        stored = await uow.schedules.get(schedule.id)
    assert (stored.version, stored.last_build_id, stored.last_run_at) == (1, "build-1", due)
    assert stored.next_run_at == due + timedelta(days=1)


async def test_remove(storage: Storage) -> None:
    project, pipeline = await seed_pipeline(storage.uow_factory)
    schedule = schedule_of(pipeline.id, project.id)
    await add(storage, schedule)
    async with storage.uow_factory() as uow:
        stale = await uow.schedules.get(schedule.id)
    async with storage.uow_factory() as uow:
        loaded = await uow.schedules.get(schedule.id)
        loaded.update(now=T0, description="changed")
        await uow.schedules.save(loaded)
        await uow.commit()
    async with storage.uow_factory() as uow:
        stale.delete()
        with pytest.raises(StaleState):
            await uow.schedules.remove(stale)
    async with storage.uow_factory() as uow:
        current = await uow.schedules.get(schedule.id)
        current.delete()
        await uow.schedules.remove(current)
        await uow.commit()
    async with storage.uow_factory() as uow:
        with pytest.raises(NotFound):
            await uow.schedules.get(schedule.id)
        with pytest.raises(NotFound):
            await uow.schedules.remove(current)
    assert [m.name for m in await storage.unpublished()][-2:] == [
        "ScheduleUpdated",
        "ScheduleDeleted",
    ]


async def test_due_and_the_earliest_next_run(storage: Storage) -> None:
    project, pipeline = await seed_pipeline(storage.uow_factory)
    hourly = schedule_of(pipeline.id, project.id, cron="@hourly", timezone="UTC")
    quarter = schedule_of(pipeline.id, project.id, cron="15 * * * *", timezone="UTC")
    off = schedule_of(pipeline.id, project.id, cron="* * * * *", active=False)
    await add(storage, hourly, quarter, off)
    noon = T0.replace(microsecond=0)
    async with storage.uow_factory() as uow:
        assert await uow.schedules.next_run_at() == noon + timedelta(minutes=15)
        assert await uow.schedules.due(noon, 10) == []
        assert await uow.schedules.due(noon + timedelta(minutes=15), 10) == [quarter.id]
        assert await uow.schedules.due(noon + timedelta(hours=1), 10) == [quarter.id, hourly.id]
        assert await uow.schedules.due(noon + timedelta(hours=1), 1) == [quarter.id]


async def test_the_read_side(storage: Storage) -> None:
    project, pipeline = await seed_pipeline(storage.uow_factory)
    first = schedule_of(pipeline.id, project.id, variables={"A": "1"})
    second = schedule_of(pipeline.id, project.id, now=at(1), active=False, ref="main")
    await add(storage, first, second)

    views = await storage.queries.list_schedules(project.id)
    assert [v.id for v in views] == [first.id, second.id]
    view = await storage.queries.get_schedule(first.id)
    assert (view.pipeline_name, view.cron, view.timezone, view.variables) == (
        "default",
        "0 3 * * *",
        "Europe/Paris",
        {"A": "1"},
    )
    assert (view.next_run_at, view.last_run_at, view.ref) == (first.next_run_at, None, None)
    assert (await storage.queries.get_schedule(second.id)).next_run_at is None
    assert await storage.queries.list_schedules("nope") == []
    with pytest.raises(NotFound):
        await storage.queries.get_schedule("nope")


async def test_builds_keep_their_schedule_and_auto_cancel_mode(storage: Storage) -> None:
    _, pipeline = await seed_pipeline(storage.uow_factory)
    build = Build.create(
        project_id=pipeline.project_id,
        pipeline_id=pipeline.id,
        number=1,
        ref="main",
        sha="c" * 40,
        source="schedule",
        variables={},
        jobs=[job("unit", interruptible=True)],
        problems=[],
        now=T0,
        schedule_id="schedule-1",
        auto_cancel=AutoCancel.INTERRUPTIBLE,
    )
    await store_build(storage.uow_factory, build)
    async with storage.uow_factory() as uow:
        loaded = await uow.builds.get(build.id)
    assert (loaded.schedule_id, loaded.auto_cancel) == ("schedule-1", AutoCancel.INTERRUPTIBLE)
    assert loaded.jobs["unit"].definition.interruptible
    assert (await storage.queries.get_build(build.id)).schedule_id == "schedule-1"


async def test_auto_cancel_candidates(storage: Storage) -> None:
    _, pipeline = await seed_pipeline(storage.uow_factory)
    _, nightly = await seed_pipeline(storage.uow_factory, "other")
    old = new_build(pipeline, 1, now=T0 - timedelta(days=8))  # outside the window
    candidate = new_build(pipeline, 2, now=at(1))
    feature = new_build(pipeline, 3, now=at(2), ref="feature")
    done = new_build(pipeline, 4, now=at(3))
    done.cancel(at(3))
    manual = new_build(pipeline, 5, [job("ship", when=When.MANUAL, allow_failure=False)], now=at(4))
    later = new_build(pipeline, 7, now=at(6))
    elsewhere = new_build(nightly, 1, now=at(1))
    for build in (old, candidate, feature, done, manual, later, elsewhere):
        await store_build(storage.uow_factory, build)
    async with storage.uow_factory() as uow:
        found = await uow.builds.unfinished_before(
            pipeline.id, "main", 6, T0 - timedelta(days=7), 10
        )
        assert found == [candidate.id]
        assert await uow.builds.unfinished_before(pipeline.id, "main", 8, at(0), 10) == [
            candidate.id,
            later.id,
        ]
        assert await uow.builds.unfinished_before(pipeline.id, "main", 8, at(0), 1) == [
            candidate.id
        ]
        assert later.sha == candidate.sha  # every build of the factory is at one commit
        excluded = await uow.builds.unfinished_before(
            pipeline.id, "main", 8, at(0), 10, excluding_shas=[candidate.sha, "f" * 40]
        )
        assert excluded == []
        others = await uow.builds.unfinished_before(
            pipeline.id, "main", 8, at(0), 10, excluding_shas=["f" * 40]
        )
        assert others == [candidate.id, later.id]
