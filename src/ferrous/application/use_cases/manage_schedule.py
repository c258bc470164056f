"""Create, change and delete schedules (the pipeline runs a cron expression asks for)."""

from __future__ import annotations

from ferrous.application.commands import CreateSchedule, DeleteSchedule, UpdateSchedule
from ferrous.application.dependencies import Dependencies
from ferrous.application.ports import UnitOfWork
from ferrous.domain.schedule import Schedule


async def create_schedule(cmd: CreateSchedule, uow: UnitOfWork, deps: Dependencies) -> Schedule:
    pipeline = await uow.pipelines.get(cmd.pipeline_id)
    schedule = Schedule.create(
        project_id=pipeline.project_id,
        pipeline_id=pipeline.id,
        cron=cmd.cron,
        timezone=cmd.timezone,
        ref=cmd.ref,
        variables=dict(cmd.variables),
        description=cmd.description,
        active=cmd.active,
        now=deps.clock.now(),
    )
    await uow.schedules.add(schedule)
    await uow.commit()
    return schedule


async def update_schedule(cmd: UpdateSchedule, uow: UnitOfWork, deps: Dependencies) -> Schedule:
    schedule = await uow.schedules.get(cmd.schedule_id)
    schedule.update(
        now=deps.clock.now(),
        cron=cmd.cron,
        timezone=cmd.timezone,
        ref=cmd.ref,
        variables=cmd.variables,
        description=cmd.description,
        active=cmd.active,
    )
    await uow.schedules.save(schedule)
    await uow.commit()
    return schedule


async def delete_schedule(cmd: DeleteSchedule, uow: UnitOfWork, deps: Dependencies) -> None:
    schedule = await uow.schedules.get(cmd.schedule_id)
    schedule.delete()
    await uow.schedules.remove(schedule)
    await uow.commit()
