"""Schedules through the bus on the in-memory adapters, with a clock the tests move.

The firing rules: a due tick makes one build (source ``schedule``, the schedule's variables
and ref), ticks missed while nothing ran collapse into one, a tick fires once even when two
firers race for it, and a tick whose build cannot be made is consumed all the same.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ferrous.application import commands as c
from ferrous.application.dependencies import Dependencies
from ferrous.application.messagebus import MessageBus
from ferrous.application.schedule_firer import fire_due_schedules, run_schedule_firer
from ferrous.domain.build import Build
from ferrous.domain.errors import ConfigInvalid, NotFound
from ferrous.domain.schedule import Schedule
from ferrous.domain.statuses import BuildStatus
from ferrous.infrastructure.git.source_repository import GitSourceRepository
from ferrous.infrastructure.memory import memory_uow_factory

from .conftest import T0, World

NIGHT = datetime(2025, 2, 1, 3, 0, tzinfo=UTC)  # the first tick of "0 3 * * *" after T0


async def nightly(world: World, pipeline_id: str, **fields: object) -> Schedule:
    values: dict[str, object] = {"pipeline_id": pipeline_id, "cron": "0 3 * * *"}
    values.update(fields)
    schedule: Schedule = await world.bus.handle(c.CreateSchedule(**values))  # type: ignore[arg-type]
    return world.store.schedules[schedule.id]


def builds(world: World) -> list[Build]:
    return sorted(world.store.builds.values(), key=lambda b: b.number)


async def test_create_update_and_delete(world: World) -> None:
    pipeline_id = await world.project()
    schedule = await nightly(world, pipeline_id, variables={"NIGHTLY": "1"}, ref="main")
    assert (schedule.next_run_at, schedule.project_id) == (
        NIGHT,
        world.store.pipelines[pipeline_id].project_id,
    )

    world.clock.advance(hours=1)
    await world.bus.handle(c.UpdateSchedule(schedule_id=schedule.id, cron="30 4 * * *", ref=None))
    changed = world.store.schedules[schedule.id]
    assert (changed.cron, changed.ref, changed.variables) == ("30 4 * * *", None, {"NIGHTLY": "1"})
    assert changed.next_run_at == NIGHT + timedelta(hours=1, minutes=30)
    assert changed.version == 1

    await world.bus.handle(c.DeleteSchedule(schedule_id=schedule.id))
    assert world.store.schedules == {}
    assert world.kinds()[-3:] == ["ScheduleCreated", "ScheduleUpdated", "ScheduleDeleted"]
    with pytest.raises(NotFound):
        await world.bus.handle(c.DeleteSchedule(schedule_id=schedule.id))


async def test_refusals(world: World) -> None:
    pipeline_id = await world.project()
    with pytest.raises(NotFound):
        await world.bus.handle(c.CreateSchedule(pipeline_id="nope", cron="* * * * *"))
    with pytest.raises(ConfigInvalid, match="needs five"):
        await world.bus.handle(c.CreateSchedule(pipeline_id=pipeline_id, cron="* * *"))
    with pytest.raises(ConfigInvalid, match="unknown time zone"):
        await world.bus.handle(
            c.CreateSchedule(pipeline_id=pipeline_id, cron="* * * * *", timezone="Moon/Base")
        )
    assert world.store.schedules == {}


async def test_a_due_tick_makes_one_build_with_the_schedule_s_variables(world: World) -> None:
    pipeline_id = await world.project()
    schedule = await nightly(world, pipeline_id, variables={"NIGHTLY": "yes"})
    assert await fire_due_schedules(world.bus) == (0, 0, NIGHT)  # not yet
    assert world.store.builds == {}

    world.clock.current = NIGHT
    fired, failed, upcoming = await fire_due_schedules(world.bus)

    assert (fired, failed, upcoming) == (1, 0, NIGHT + timedelta(days=1))
    [build] = builds(world)
    assert (build.source, build.ref, build.schedule_id) == ("schedule", "main", schedule.id)
    assert build.variables == {"NIGHTLY": "yes"}
    variables = build.jobs["compile"].spec["variables"]
    assert variables["CI_PIPELINE_SOURCE"] == "schedule"
    assert variables["NIGHTLY"] == "yes"
    stored = world.store.schedules[schedule.id]
    assert (stored.last_run_at, stored.last_build_id) == (NIGHT, build.id)
    assert stored.next_run_at == NIGHT + timedelta(days=1)


async def test_missed_ticks_collapse_into_one_run(world: World) -> None:
    pipeline_id = await world.project()
    schedule = await nightly(world, pipeline_id)
    world.clock.current = NIGHT + timedelta(days=3, hours=2)  # three nights missed

    assert (await fire_due_schedules(world.bus))[0] == 1
    assert (await fire_due_schedules(world.bus))[0] == 0

    assert len(world.store.builds) == 1
    assert world.store.schedules[schedule.id].next_run_at == NIGHT + timedelta(days=4)


async def test_a_tick_that_is_not_due_fires_nothing(world: World) -> None:
    pipeline_id = await world.project()
    schedule = await nightly(world, pipeline_id)
    assert await world.bus.handle(c.FireSchedule(schedule_id=schedule.id)) is None
    assert await world.bus.handle(c.FireSchedule(schedule_id="gone")) is None
    inactive = await nightly(world, pipeline_id, active=False)
    world.clock.current = NIGHT + timedelta(days=1)
    assert await world.bus.handle(c.FireSchedule(schedule_id=inactive.id)) is None
    assert world.store.builds == {}


async def test_two_firers_racing_for_one_tick_make_one_build(world: World, tmp_path: Path) -> None:
    """Two buses on one store stand for two servers; both see the tick due."""
    pipeline_id = await world.project()
    schedule = await nightly(world, pipeline_id)
    world.clock.current = NIGHT
    other = MessageBus(
        memory_uow_factory(world.store),
        Dependencies(clock=world.clock, sources=GitSourceRepository(tmp_path / "other-trees")),
    )

    results = await asyncio.gather(
        world.bus.handle(c.FireSchedule(schedule_id=schedule.id)),
        other.handle(c.FireSchedule(schedule_id=schedule.id)),
    )

    assert sorted(r is None for r in results) == [False, True]
    [build] = world.store.builds.values()
    stored = world.store.schedules[schedule.id]
    assert (stored.last_build_id, stored.next_run_at) == (build.id, NIGHT + timedelta(days=1))
    assert [m.name for m in world.store.outbox].count("BuildCreated") == 1


async def test_an_invalid_pipeline_file_gives_a_failed_build_and_the_tick_moves_on(
    world: World,
) -> None:
    pipeline_id = await world.project("job:\n  script: [x]\n  needs: [nope]\n")
    schedule = await nightly(world, pipeline_id)
    world.clock.current = NIGHT

    await fire_due_schedules(world.bus)

    [build] = builds(world)
    assert (build.status, build.failure_reason) == (BuildStatus.FAILED, "config_error")
    assert any("nope" in p["message"] for p in build.problems)
    assert world.store.schedules[schedule.id].next_run_at == NIGHT + timedelta(days=1)


@pytest.mark.parametrize("problem", ["deleted ref", "disabled pipeline"])
async def test_a_tick_whose_build_cannot_be_made_is_consumed(world: World, problem: str) -> None:
    pipeline_id = await world.project()
    if problem == "deleted ref":
        schedule = await nightly(world, pipeline_id, ref="gone")
    else:
        schedule = await nightly(world, pipeline_id)
        await world.bus.handle(c.DisablePipeline(pipeline_id=pipeline_id))
    world.clock.current = NIGHT

    assert await fire_due_schedules(world.bus) == (0, 0, NIGHT + timedelta(days=1))

    assert world.store.builds == {}
    stored = world.store.schedules[schedule.id]
    assert (stored.last_run_at, stored.last_build_id) == (NIGHT, None)


async def test_run_now_makes_a_build_and_keeps_the_next_tick(world: World) -> None:
    pipeline_id = await world.project()
    schedule = await nightly(world, pipeline_id, active=False, variables={"A": "1"})

    build: Build = await world.bus.handle(c.RunSchedule(schedule_id=schedule.id))

    assert (build.source, build.schedule_id, build.variables) == (
        "schedule",
        schedule.id,
        {"A": "1"},
    )
    stored = world.store.schedules[schedule.id]
    assert (stored.last_build_id, stored.last_run_at, stored.next_run_at) == (build.id, T0, None)
    gone = await nightly(world, pipeline_id, ref="gone")
    with pytest.raises(NotFound):
        await world.bus.handle(c.RunSchedule(schedule_id=gone.id))
    with pytest.raises(NotFound):
        await world.bus.handle(c.RunSchedule(schedule_id="nope"))


async def test_the_firer_loop_fires_on_time_and_wakes_on_changes(world: World) -> None:
    pipeline_id = await world.project()
    changed = asyncio.Event()
    loop = asyncio.create_task(run_schedule_firer(world.bus, changed, poll=60.0))
    try:
        await asyncio.sleep(0.05)  # the first pass found nothing and waits up to a minute
        schedule = await nightly(world, pipeline_id, cron="* * * * *")
        world.clock.current = T0 + timedelta(minutes=5)
        changed.set()  # what a ScheduleCreated event does on the server
        async with asyncio.timeout(5):
            while not world.store.builds:
                await asyncio.sleep(0.01)
    finally:
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)
    [build] = world.store.builds.values()
    assert build.schedule_id == schedule.id
    assert world.store.schedules[schedule.id].next_run_at == T0 + timedelta(minutes=6)
