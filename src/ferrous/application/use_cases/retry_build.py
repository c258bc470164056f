"""Run failed jobs again: all of a finished build's, or one job."""

from __future__ import annotations

from ferrous.application.commands import RetryBuild, RetryJob
from ferrous.application.dependencies import Dependencies
from ferrous.application.ports import UnitOfWork
from ferrous.domain.build import Build, Job


async def retry_build(cmd: RetryBuild, uow: UnitOfWork, deps: Dependencies) -> Build:
    build = await uow.builds.get(cmd.build_id)
    build.retry(deps.clock.now())
    await uow.builds.save(build)
    await uow.commit()
    return build


async def retry_job(cmd: RetryJob, uow: UnitOfWork, deps: Dependencies) -> Job:
    build = await uow.builds.get(await uow.builds.build_of_job(cmd.job_id))
    job = build.job(cmd.job_id)
    build.retry_jobs([job.name], deps.clock.now())
    await uow.builds.save(build)
    await uow.commit()
    return job
