"""Schedules: a pipeline run by cron, in a time zone, at a ref, with variables.

The invariant that matters is that each tick fires once: ``next_run_at`` is the one moment
the schedule is due, and ``fire`` moves it to the first tick strictly after *now*, not after
the tick that was due. A server that was down for three days therefore runs a daily schedule
once when it comes back, not three times (GitLab does the same). The repository stores a
schedule with a compare-and-set on ``version``, so of two servers that both saw a tick due
only the first to commit fires it.

An inactive schedule has no ``next_run_at``; activating it (or changing its cron or time
zone) computes the next tick from the moment of the change, so no stale tick fires.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum

from ferrous.domain.cron import CronRule
from ferrous.domain.errors import ConfigInvalid, InvalidTransition
from ferrous.domain.events import Event, ScheduleCreated, ScheduleDeleted, ScheduleUpdated
from ferrous.domain.ids import new_id

MAX_DESCRIPTION = 255
MAX_REF = 255
MAX_VARIABLES = 100
_VARIABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,254}$")


class Keep(Enum):
    """``update``'s "leave this field as it is" (``None`` is a value for ``ref``)."""

    KEEP = "keep"


KEEP = Keep.KEEP


def check_variables(variables: dict[str, str]) -> dict[str, str]:
    if len(variables) > MAX_VARIABLES:
        raise ConfigInvalid(f"a schedule may have at most {MAX_VARIABLES} variables")
    for name, value in variables.items():
        if not _VARIABLE_NAME.match(name):
            raise ConfigInvalid(
                f"variable name {name!r} must be letters, digits and '_', not starting with a digit"
            )
        if not isinstance(value, str):
            raise ConfigInvalid(f"variable {name!r} must be a string")
    return dict(variables)


def _check_text(value: str, what: str, limit: int) -> str:
    if len(value) > limit:
        raise ConfigInvalid(f"a schedule's {what} may have at most {limit} characters")
    return value


def _check_ref(ref: str | None) -> str | None:
    if ref is None:
        return None
    ref = ref.strip()
    if not ref:
        raise ConfigInvalid(
            "a schedule's ref is a branch or tag name; leave it out for the "
            "project's default branch"
        )
    return _check_text(ref, "ref", MAX_REF)


@dataclass(slots=True, kw_only=True)
class Schedule:
    id: str
    project_id: str
    pipeline_id: str
    description: str
    cron: str
    timezone: str  # IANA name
    ref: str | None  # None: the project's default branch when it fires
    variables: dict[str, str]
    active: bool
    next_run_at: datetime | None  # UTC; None while inactive
    created_at: datetime
    last_run_at: datetime | None = None  # when it last fired (by cron or run now)
    last_build_id: str | None = None
    version: int = 0  # optimistic concurrency: bumped on every save
    events: list[Event] = field(default_factory=list)

    @classmethod
    def create(
        cls,
        *,
        project_id: str,
        pipeline_id: str,
        cron: str,
        now: datetime,
        timezone: str = "UTC",
        ref: str | None = None,
        variables: dict[str, str] | None = None,
        description: str = "",
        active: bool = True,
    ) -> Schedule:
        """Raises ConfigInvalid for an invalid cron, time zone, ref, variable or description."""
        rule = CronRule.parse(cron, timezone)
        schedule = cls(
            id=new_id(),
            project_id=project_id,
            pipeline_id=pipeline_id,
            description=_check_text(description.strip(), "description", MAX_DESCRIPTION),
            cron=rule.expression,
            timezone=timezone,
            ref=_check_ref(ref),
            variables=check_variables(variables or {}),
            active=active,
            next_run_at=rule.next_after(now) if active else None,
            created_at=now,
        )
        schedule.events.append(
            ScheduleCreated(
                schedule_id=schedule.id,
                project_id=project_id,
                pipeline_id=pipeline_id,
                next_run_at=_iso(schedule.next_run_at),
            )
        )
        return schedule

    @property
    def rule(self) -> CronRule:
        return CronRule.parse(self.cron, self.timezone)

    def is_due(self, now: datetime) -> bool:
        return self.active and self.next_run_at is not None and self.next_run_at <= now

    def update(
        self,
        *,
        now: datetime,
        cron: str | Keep = KEEP,
        timezone: str | Keep = KEEP,
        ref: str | Keep | None = KEEP,
        variables: dict[str, str] | Keep = KEEP,
        description: str | Keep = KEEP,
        active: bool | Keep = KEEP,
    ) -> None:
        """Change what is given; the next tick is computed again from ``now`` when the cron,
        the time zone or the active flag changed. Checks everything before changing anything."""
        new_cron = self.cron if isinstance(cron, Keep) else cron
        new_zone = self.timezone if isinstance(timezone, Keep) else timezone
        rule = CronRule.parse(new_cron, new_zone)
        new_ref = self.ref if isinstance(ref, Keep) else _check_ref(ref)
        new_variables = (
            self.variables if isinstance(variables, Keep) else check_variables(variables)
        )
        new_description = (
            self.description
            if isinstance(description, Keep)
            else _check_text(description.strip(), "description", MAX_DESCRIPTION)
        )
        new_active = self.active if isinstance(active, Keep) else active
        retime = (rule.expression, new_zone, new_active) != (self.cron, self.timezone, self.active)
        self.cron, self.timezone, self.ref = rule.expression, new_zone, new_ref
        self.variables, self.description, self.active = new_variables, new_description, new_active
        if retime:
            self.next_run_at = rule.next_after(now) if new_active else None
        self.events.append(ScheduleUpdated(schedule_id=self.id, next_run_at=_iso(self.next_run_at)))

    def fire(self, now: datetime) -> None:
        """The tick that was due fires: the next one is the first tick after ``now``, so
        ticks missed while no server ran collapse into this one run."""
        if not self.is_due(now):
            raise InvalidTransition(
                f"schedule {self.id} is not due (next run {_iso(self.next_run_at)})"
            )
        self.next_run_at = self.rule.next_after(now)
        self.last_run_at = now

    def ran(self, build_id: str, now: datetime) -> None:
        """A build was made for it (by its cron or by "run now")."""
        self.last_run_at = now
        self.last_build_id = build_id

    def delete(self) -> None:
        self.events.append(ScheduleDeleted(schedule_id=self.id))


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()
