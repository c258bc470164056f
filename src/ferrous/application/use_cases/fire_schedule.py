"""A schedule makes a build: when its tick is due (the firer), or now (a person asks).

Firing happens in one transaction: the build is created (through ``create_build``, the code
path of every trigger, with ``CI_PIPELINE_SOURCE=schedule`` and the schedule's variables),
the schedule moves to its next tick and records the build, and the schedule is stored with
a compare-and-set on its version. Two servers that both saw the tick due (a singleton lock
that changed hands, a clock a little off) both get this far, but only the first commit
passes the compare-and-set; the other rolls back, build included, and when the bus runs it
again the schedule is no longer due. The expensive part (git, compiling) comes before the
first write, so on SQLite the write lock is not held while it runs.

A build that cannot be made (the ref was deleted, the pipeline is disabled, the repository
is gone, unreachable or refuses the credentials) still consumes the tick: it is logged and
the schedule waits for its next tick, as GitLab's schedules do; retrying every few seconds
would only hammer a repository that refuses us. An invalid pipeline file is not such a
case: it makes a failed build listing the problems, like any trigger.
"""

from __future__ import annotations

import structlog

from ferrous.application.commands import FireSchedule, RunSchedule, TriggerBuild
from ferrous.application.dependencies import Dependencies
from ferrous.application.ports import UnitOfWork
from ferrous.application.use_cases.trigger_build import create_build
from ferrous.domain.build import Build
from ferrous.domain.errors import (
    ConfigInvalid,
    Conflict,
    InvalidValue,
    NotFound,
    RepositoryUnavailable,
)
from ferrous.domain.schedule import Schedule

log = structlog.get_logger(__name__)

SOURCE = "schedule"  # CI_PIPELINE_SOURCE


def _trigger(schedule: Schedule) -> TriggerBuild:
    return TriggerBuild(
        pipeline_id=schedule.pipeline_id,
        ref=schedule.ref,
        source=SOURCE,
        variables=dict(schedule.variables),
        schedule_id=schedule.id,
    )


async def fire_schedule(cmd: FireSchedule, uow: UnitOfWork, deps: Dependencies) -> Build | None:
    """The build of the due tick; None when the schedule is not due (fired by another
    server already, changed, deleted) or no build could be made."""
    now = deps.clock.now()
    try:
        schedule = await uow.schedules.get(cmd.schedule_id)
    except NotFound:
        return None
    if not schedule.is_due(now):
        return None
    tick = schedule.next_run_at
    schedule.fire(now)
    build: Build | None = None
    try:
        build = await create_build(_trigger(schedule), uow, deps)
    except (NotFound, Conflict, ConfigInvalid, InvalidValue, RepositoryUnavailable) as exc:
        log.warning("schedule_build_refused", schedule_id=schedule.id, error=exc.message)
    if build is not None:
        schedule.ran(build.id, now)
    await uow.schedules.save(schedule)  # the compare-and-set: one firer per tick
    await uow.commit()
    log.info(
        "schedule_fired",
        schedule_id=schedule.id,
        tick=tick.isoformat() if tick else None,
        build_id=build.id if build else None,
        next_run_at=schedule.next_run_at.isoformat() if schedule.next_run_at else None,
    )
    return build


async def run_schedule(cmd: RunSchedule, uow: UnitOfWork, deps: Dependencies) -> Build:
    """Run the schedule's pipeline now; its next tick does not move. Errors reach the caller
    (a deleted ref is 404, a disabled pipeline 409)."""
    schedule = await uow.schedules.get(cmd.schedule_id)
    build = await create_build(_trigger(schedule), uow, deps)
    schedule.ran(build.id, deps.clock.now())
    await uow.schedules.save(schedule)
    await uow.commit()
    return build
