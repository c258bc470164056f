"""Cron rules: validation with messages a person can act on, and ticks across DST changes."""

from __future__ import annotations

import itertools
import re
from datetime import UTC, datetime

import pytest

from ferrous.domain.cron import CronRule, zone
from ferrous.domain.errors import ConfigInvalid


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def ticks(rule: CronRule, start: datetime, count: int) -> list[str]:
    found, moment = [], start
    for _ in range(count):
        moment = rule.next_after(moment)
        found.append(moment.strftime("%m-%d %H:%M"))
    return found


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("* * *", "has 3 field(s); it needs five"),
        ("0 3 * * * *", "has 6 field(s); it needs five"),
        ("", "has 0 field(s)"),
        ("61 * * * *", "is invalid"),
        ("0 25 * * *", "is invalid"),
        ("a b c d e", "is invalid"),
        ("H * * * *", "is invalid"),
        ("0 0 30 2 *", "never happens"),
        ("@sometimes", "has 1 field(s)"),
    ],
)
def test_invalid_expressions_say_what_is_wrong(expression: str, message: str) -> None:
    with pytest.raises(ConfigInvalid, match=re.escape(message)) as caught:
        CronRule.parse(expression)
    assert repr(expression) in caught.value.message


@pytest.mark.parametrize("name", ["Mars/Olympus", "", " UTC", "../etc/passwd", "/etc/localtime"])
def test_unknown_time_zones_are_refused_with_an_example(name: str) -> None:
    with pytest.raises(ConfigInvalid, match=r"unknown time zone .* such as 'Europe/Paris'"):
        CronRule.parse("0 3 * * *", name)
    with pytest.raises(ConfigInvalid):
        zone(name)


@pytest.mark.parametrize(
    ("expression", "fields"),
    [
        ("@daily", "0 0 * * *"),
        ("@HOURLY", "0 * * * *"),
        ("@weekly", "0 0 * * 0"),
        ("  0   3 * *  MON-FRI ", "0 3 * * MON-FRI"),
        ("0 3 L * *", "0 3 L * *"),
    ],
)
def test_macros_and_extensions_are_read(expression: str, fields: str) -> None:
    assert CronRule.parse(expression).fields == fields


def test_the_next_tick_is_strictly_after_the_moment() -> None:
    rule = CronRule.parse("0 3 * * *")
    assert rule.next_after(utc(2025, 1, 1, 3, 0)) == utc(2025, 1, 2, 3, 0)
    assert rule.next_after(utc(2025, 1, 1, 2, 59, 59)) == utc(2025, 1, 1, 3, 0)
    every_minute = CronRule.parse("* * * * *")
    assert every_minute.next_after(utc(2025, 1, 1, 3, 0, 0)) == utc(2025, 1, 1, 3, 1)
    assert every_minute.next_after(utc(2025, 1, 1, 3, 0, 30)) == utc(2025, 1, 1, 3, 1)


def test_ticks_are_read_in_the_time_zone_and_returned_in_utc() -> None:
    paris = CronRule.parse("0 3 * * *", "Europe/Paris")
    winter = paris.next_after(utc(2025, 1, 10, 12, 0))
    summer = paris.next_after(utc(2025, 7, 10, 12, 0))
    assert winter == utc(2025, 1, 11, 2, 0)  # 03:00 CET
    assert summer == utc(2025, 7, 11, 1, 0)  # 03:00 CEST
    assert winter.tzinfo is UTC


def test_a_daily_rule_keeps_its_local_hour_across_the_spring_change() -> None:
    # 2025-03-30 in Paris: 02:00 CET becomes 03:00 CEST
    paris = CronRule.parse("0 3 * * *", "Europe/Paris")
    assert [t.isoformat() for t in _utc_ticks(paris, utc(2025, 3, 28, 12, 0), 3)] == [
        "2025-03-29T02:00:00+00:00",
        "2025-03-30T01:00:00+00:00",
        "2025-03-31T01:00:00+00:00",
    ]


def test_a_tick_in_the_skipped_hour_runs_once_right_after_the_gap() -> None:
    paris = CronRule.parse("30 2 * * *", "Europe/Paris")
    moments = _utc_ticks(paris, utc(2025, 3, 28, 12, 0), 3)
    local = [m.astimezone(zone("Europe/Paris")).strftime("%d %H:%M") for m in moments]
    assert local == ["29 02:30", "30 03:00", "31 02:30"]


def test_a_fixed_hour_rule_runs_once_when_the_hour_repeats_in_autumn() -> None:
    # 2025-10-26 in Paris: 03:00 CEST becomes 02:00 CET, so 02:30 happens twice
    paris = CronRule.parse("30 2 * * *", "Europe/Paris")
    moments = _utc_ticks(paris, utc(2025, 10, 24, 12, 0), 3)
    assert [m.isoformat() for m in moments] == [
        "2025-10-25T00:30:00+00:00",
        "2025-10-26T00:30:00+00:00",  # the first 02:30 (CEST), not the second (CET)
        "2025-10-27T01:30:00+00:00",
    ]
    every_quarter_at_two = CronRule.parse("*/15 2 * * *", "Europe/Paris")
    night = _utc_ticks(every_quarter_at_two, utc(2025, 10, 25, 23, 0), 5)
    # 02:00-02:45 CEST once (00:00-00:45 UTC); the repeated CET hour is skipped: next night
    assert [m.strftime("%d %H:%M") for m in night] == [
        "26 00:00", "26 00:15", "26 00:30", "26 00:45", "27 01:00",
    ]  # fmt: skip


def test_a_wildcard_hour_rule_keeps_its_rhythm_through_the_repeated_hour() -> None:
    hourly = CronRule.parse("@hourly", "Europe/Paris")
    moments = _utc_ticks(hourly, utc(2025, 10, 25, 23, 30), 4)
    assert [m.strftime("%H:%M") for m in moments] == ["00:00", "01:00", "02:00", "03:00"]
    half_hourly = CronRule.parse("*/30 * * * *", "Europe/Paris")
    assert len(_utc_ticks(half_hourly, utc(2025, 10, 25, 23, 50), 6)) == 6
    gaps = _utc_ticks(half_hourly, utc(2025, 10, 25, 23, 50), 6)
    assert all((b - a).total_seconds() == 1800 for a, b in itertools.pairwise(gaps))


def test_new_york_changes_on_its_own_dates() -> None:
    ny = CronRule.parse("0 9 * * *", "America/New_York")
    assert ticks(ny, utc(2025, 3, 8, 20, 0), 2) == ["03-09 13:00", "03-10 13:00"]
    assert ny.next_after(utc(2025, 3, 7, 20, 0)) == utc(2025, 3, 8, 14, 0)  # still EST


def test_a_naive_moment_is_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        CronRule.parse("* * * * *").next_after(datetime(2025, 1, 1))


def _utc_ticks(rule: CronRule, start: datetime, count: int) -> list[datetime]:
    found, moment = [], start
    for _ in range(count):
        moment = rule.next_after(moment)
        found.append(moment)
    return found
