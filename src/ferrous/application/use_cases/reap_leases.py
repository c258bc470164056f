"""Periodic: disconnect silent agents and settle the jobs they held."""

from __future__ import annotations

from ferrous.application.commands import ReapLeases
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
            build = await uow.builds.get(ref.build_id, lock=True)
            build.lose_job(ref.job_id, now)
            await uow.builds.save(build)
            settled += 1
    await uow.commit()
    return settled
