"""The Schedule aggregate: validation, the next tick, and missed ticks collapsing into one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ferrous.domain.errors import ConfigInvalid, InvalidTransition
from ferrous.domain.events import ScheduleCreated, ScheduleDeleted, ScheduleUpdated
from ferrous.domain.schedule import Schedule

T0 = datetime(2025, 1, 31, 12, 0, tzinfo=UTC)


def nightly(**fields: object) -> Schedule:
    values: dict[str, object] = {
        "project_id": "p",
        "pipeline_id": "pl",
        "cron": "0 3 * * *",
        "timezone": "Europe/Paris",
        "now": T0,
    }
    values.update(fields)
    return Schedule.create(**values)  # type: ignore[arg-type]


def test_create_computes_the_next_tick_in_its_time_zone() -> None:
    schedule = nightly(ref="main", variables={"NIGHTLY": "1"}, description="  nightly  ")
    assert schedule.next_run_at == datetime(2025, 2, 1, 2, 0, tzinfo=UTC)  # 03:00 CET
    assert (schedule.ref, schedule.variables, schedule.description) == (
        "main",
        {"NIGHTLY": "1"},
        "nightly",
    )
    assert schedule.active
    assert schedule.last_run_at is None
    [event] = schedule.events
    assert event == ScheduleCreated(
        schedule_id=schedule.id,
        project_id="p",
        pipeline_id="pl",
        next_run_at="2025-02-01T02:00:00+00:00",
    )


def test_an_inactive_schedule_has_no_next_tick() -> None:
    schedule = nightly(active=False)
    assert schedule.next_run_at is None
    assert not schedule.is_due(T0 + timedelta(days=30))


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"cron": "0 3 * *"}, "needs five"),
        ({"timezone": "Paris"}, "unknown time zone 'Paris'"),
        ({"ref": "  "}, "branch or tag name"),
        ({"ref": "x" * 256}, "ref may have at most 255"),
        ({"description": "x" * 256}, "description may have at most 255"),
        ({"variables": {"1BAD": "x"}}, "variable name '1BAD'"),
        ({"variables": {"A-B": "x"}}, "variable name 'A-B'"),
        ({"variables": {f"V{i}": "x" for i in range(101)}}, "at most 100 variables"),
    ],
)
def test_invalid_fields_are_refused(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigInvalid, match=message):
        nightly(**fields)


def test_missed_ticks_collapse_into_one_run() -> None:
    schedule = nightly()
    assert schedule.next_run_at is not None
    back = schedule.next_run_at + timedelta(days=3, hours=5)  # three nights of downtime
    assert schedule.is_due(back)
    schedule.fire(back)
    assert schedule.last_run_at == back
    assert schedule.next_run_at == datetime(2025, 2, 5, 2, 0, tzinfo=UTC)  # the next night
    assert not schedule.is_due(back)
    with pytest.raises(InvalidTransition, match="not due"):
        schedule.fire(back)


def test_a_tick_fires_at_its_moment_and_moves_to_the_next() -> None:
    schedule = nightly(cron="*/10 * * * *", timezone="UTC")
    tick = schedule.next_run_at
    assert tick == datetime(2025, 1, 31, 12, 10, tzinfo=UTC)
    assert not schedule.is_due(tick - timedelta(microseconds=1))
    schedule.fire(tick)
    assert schedule.next_run_at == tick + timedelta(minutes=10)


def test_update_retimes_only_when_the_timing_changes() -> None:
    schedule = nightly()
    first = schedule.next_run_at
    later = T0 + timedelta(hours=20)  # after the next tick was computed, before it fires
    schedule.update(now=later, variables={"A": "1"}, description="x", ref="release")
    assert schedule.next_run_at == first  # not retimed: nothing about timing changed
    assert (schedule.variables, schedule.description, schedule.ref) == ({"A": "1"}, "x", "release")
    schedule.update(now=later, ref=None)
    assert schedule.ref is None
    schedule.update(now=later, timezone="America/New_York")
    assert schedule.next_run_at == datetime(2025, 2, 2, 8, 0, tzinfo=UTC)  # 03:00 EST, from now
    schedule.update(now=later, active=False)
    assert schedule.next_run_at is None
    reactivated = later + timedelta(days=10)
    schedule.update(now=reactivated, active=True)
    assert schedule.next_run_at == datetime(2025, 2, 12, 8, 0, tzinfo=UTC)  # no stale tick
    assert [type(e) for e in schedule.events[1:]] == [ScheduleUpdated] * 5


def test_an_invalid_update_changes_nothing() -> None:
    schedule = nightly()
    before = (schedule.cron, schedule.timezone, schedule.next_run_at, schedule.description)
    with pytest.raises(ConfigInvalid):
        schedule.update(now=T0, description="new", cron="every day")
    with pytest.raises(ConfigInvalid):
        schedule.update(now=T0, description="new", variables={"no way": "x"})
    assert (schedule.cron, schedule.timezone, schedule.next_run_at, schedule.description) == before
    assert len(schedule.events) == 1


def test_ran_and_delete() -> None:
    schedule = nightly()
    tick = schedule.next_run_at
    schedule.ran("build-1", T0)
    assert (schedule.last_build_id, schedule.last_run_at, schedule.next_run_at) == (
        "build-1",
        T0,
        tick,
    )
    schedule.delete()
    assert schedule.events[-1] == ScheduleDeleted(schedule_id=schedule.id)
