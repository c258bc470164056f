"""An agent reports an attempt's result; the build decides what happens next."""

from __future__ import annotations

from ferrous.application.commands import CompleteJob
from ferrous.application.dependencies import Dependencies
from ferrous.application.ports import UnitOfWork
from ferrous.domain.build import Job
from ferrous.domain.errors import Conflict


async def complete_job(cmd: CompleteJob, uow: UnitOfWork, deps: Dependencies) -> Job:
    # Locked: agents finishing jobs of one build at once queue here instead of retrying.
    build = await uow.builds.get(await uow.builds.build_of_job(cmd.job_id), lock=True)
    job = build.job(cmd.job_id)
    # The agent that ran this attempt: the lease holder, or for a finished attempt (a repeated
    # report whose answer was lost, after the job was queued again) the one in its history.
    ran = {past.number: past.agent_id for past in job.history}
    holder = ran.get(cmd.attempt, job.agent_id if cmd.attempt == job.attempt else None)
    if holder is None or holder != cmd.agent_id:
        raise Conflict("this agent does not hold the job's lease; its result is refused")
    build.complete_job(
        cmd.job_id,
        attempt=cmd.attempt,
        exit_code=cmd.exit_code,
        failure_reason=cmd.failure_reason,
        now=deps.clock.now(),
        coverage=cmd.coverage,
        phases=cmd.phases,
    )
    await uow.builds.save(build)
    await uow.commit()
    return job
