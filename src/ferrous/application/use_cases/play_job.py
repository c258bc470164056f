"""A person starts a manual job (or a delayed one early)."""

from __future__ import annotations

from ferrous.application.commands import PlayJob
from ferrous.application.dependencies import Dependencies
from ferrous.application.ports import UnitOfWork
from ferrous.domain.build import Job


async def play_job(cmd: PlayJob, uow: UnitOfWork, deps: Dependencies) -> Job:
    build = await uow.builds.get(await uow.builds.build_of_job(cmd.job_id))
    job = build.play(build.job(cmd.job_id).name, deps.clock.now())
    await uow.builds.save(build)
    await uow.commit()
    return job
