"""An agent reports an attempt's result; the build decides what happens next."""

from __future__ import annotations

from ferrous.application.commands import CompleteJob
from ferrous.application.dependencies import Dependencies
from ferrous.application.ports import UnitOfWork
from ferrous.domain.build import Job
from ferrous.domain.errors import Conflict


async def complete_job(cmd: CompleteJob, uow: UnitOfWork, deps: Dependencies) -> Job:
    build = await uow.builds.get(await uow.builds.build_of_job(cmd.job_id))
    job = build.job(cmd.job_id)
    if job.agent_id != cmd.agent_id:
        raise Conflict("this agent does not hold the job's lease; its result is refused")
    build.complete_job(
        cmd.job_id,
        attempt=cmd.attempt,
        exit_code=cmd.exit_code,
        failure_reason=cmd.failure_reason,
        now=deps.clock.now(),
    )
    await uow.builds.save(build)
    await uow.commit()
    return job
