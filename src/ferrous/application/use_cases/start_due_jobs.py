"""Periodic: queue `when: delayed` jobs whose time has come."""

from __future__ import annotations

from ferrous.application.commands import StartDueJobs
from ferrous.application.dependencies import Dependencies
from ferrous.application.ports import UnitOfWork


async def start_due_jobs(cmd: StartDueJobs, uow: UnitOfWork, deps: Dependencies) -> int:
    now = deps.clock.now()
    started = 0
    for build_id in await uow.builds.with_due_jobs(now):
        build = await uow.builds.get(build_id)
        started += len(build.start_due(now))
        await uow.builds.save(build)
    await uow.commit()
    return started
