"""Periodic work of the scheduler: expire leases of silent agents, start delayed jobs."""

from __future__ import annotations

from ferrous.application.commands import ReapLeases, StartDueJobs
from ferrous.application.dependencies import Dependencies
from ferrous.application.ports import UnitOfWork


async def reap_leases(cmd: ReapLeases, uow: UnitOfWork, deps: Dependencies) -> int:
    """Disconnect agents silent for longer than the lease timeout; settle their jobs.

    Each lost job is retried if its ``retry`` allows ``runner_system_failure``, otherwise it
    fails with that reason. Returns how many jobs were settled.
    """
    now = deps.clock.now()
    settled = 0
    for agent in await uow.agents.silent_since(now - deps.lease_timeout):
        agent.disconnect("lease expired: no heartbeat")
        await uow.agents.save(agent)
        for ref in await uow.builds.running_on(agent.id):
            build = await uow.builds.get(ref.build_id)
            build.lose_job(ref.job_id, now)
            await uow.builds.save(build)
            settled += 1
    await uow.commit()
    return settled


async def start_due_jobs(cmd: StartDueJobs, uow: UnitOfWork, deps: Dependencies) -> int:
    now = deps.clock.now()
    started = 0
    for build_id in await uow.builds.with_due_jobs(now):
        build = await uow.builds.get(build_id)
        started += len(build.start_due(now))
        await uow.builds.save(build)
    await uow.commit()
    return started
