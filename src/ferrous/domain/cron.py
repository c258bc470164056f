"""Cron expressions in a time zone: validation and the next tick, daylight saving included.

The one module of the domain that uses a library besides the standard one: ``croniter`` is
pure computation (no I/O, no global state), and writing a cron matcher again would only add
bugs. It is wrapped here so the rest of the domain sees a typed ``CronRule``.

The expression is read in the schedule's IANA time zone (``zoneinfo``), as people mean it:
``0 3 * * *`` in ``Europe/Paris`` is 03:00 Paris time in winter and in summer. Daylight saving
follows Vixie cron, the behaviour cron users know:

- When clocks jump forward past a tick (02:30 on the night 02:00 becomes 03:00), the tick
  happens at the first moment after the gap (03:00), once.
- When clocks fall back and an hour repeats, a rule with a fixed hour (``30 2 * * *``) runs
  once, at the first 02:30; a rule whose hour field is a wildcard (``*/15 * * * *``,
  ``@hourly``) keeps its rhythm in real time and runs in both hours.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import (  # type: ignore[import-untyped]  # croniter ships no type hints
    CroniterBadDateError,
    CroniterError,
    croniter,
)

from ferrous.domain.errors import ConfigInvalid

#: The usual shorthands, spelled out so the hour field can be inspected.
MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
FIELDS = "minute hour day-of-month month day-of-week"
#: A probe far enough to meet every real rule (29 February on a Monday needs 28 years).
_PROBE_START = datetime(2001, 1, 1, tzinfo=UTC)
_MAX_REPEATS = 120  # fall-back ticks skipped in a row at most (two per minute, one hour)


def zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name``; ConfigInvalid with an example when there is none."""
    try:
        if not name or name != name.strip():
            raise ValueError(name)
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigInvalid(
            f"unknown time zone {name!r}: give an IANA name such as 'Europe/Paris', "
            "'America/New_York' or 'UTC'"
        ) from None


@dataclass(frozen=True, slots=True)
class CronRule:
    """A valid five-field cron expression read in a valid time zone."""

    expression: str  # as given (a macro stays a macro)
    timezone: str
    fields: str  # the five fields, macros expanded

    @classmethod
    def parse(cls, expression: str, timezone: str = "UTC") -> CronRule:
        """Raises ConfigInvalid saying what is wrong with the expression or the zone."""
        zone(timezone)
        text = " ".join(expression.split())
        fields = MACROS.get(text.lower(), text)
        count = len(fields.split())
        if count != 5:
            raise ConfigInvalid(
                f"cron expression {expression!r} has {count} field(s); it needs five: "
                f"{FIELDS} (for example '0 3 * * *': every day at 03:00), or one of "
                f"{', '.join(MACROS)}"
            )
        try:
            croniter(fields, _PROBE_START)
        except CroniterError as exc:
            raise ConfigInvalid(f"cron expression {expression!r} is invalid: {exc}") from None
        rule = cls(expression=text, timezone=timezone, fields=fields)
        try:
            rule.next_after(_PROBE_START)
        except CroniterBadDateError:
            raise ConfigInvalid(
                f"cron expression {expression!r} never happens (no such date)"
            ) from None
        return rule

    @property
    def wildcard_hour(self) -> bool:
        return self.fields.split()[1].startswith("*")

    def next_after(self, moment: datetime) -> datetime:
        """The first tick strictly after ``moment`` (aware), in UTC."""
        if moment.tzinfo is None:
            raise ValueError(f"naive datetime {moment!r}: pass an aware one")
        tz = zone(self.timezone)
        ticks = croniter(self.fields, moment.astimezone(tz))
        for _ in range(_MAX_REPEATS):
            tick: datetime = ticks.get_next(datetime).astimezone(UTC)
            if tick > moment and not self._repeated_wall_time(tick, tz):
                return tick
        raise CroniterBadDateError(f"no tick of {self.expression!r} after {moment}")

    def _repeated_wall_time(self, tick: datetime, tz: ZoneInfo) -> bool:
        """The second pass of a wall-clock time in a fall-back hour, for a fixed-hour rule."""
        if self.wildcard_hour:
            return False
        local = tick.astimezone(tz)  # sets ``fold`` to 1 on the second pass
        return local.fold == 1 and local.replace(fold=0).utcoffset() != local.utcoffset()
