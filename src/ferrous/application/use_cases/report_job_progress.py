"""A running agent says it is alive and what it runs; the answer says what to cancel."""

from __future__ import annotations

from datetime import timedelta

from ferrous.application.commands import Heartbeat
from ferrous.application.dependencies import Dependencies
from ferrous.application.ports import UnitOfWork
from ferrous.domain.statuses import JobStatus

#: A job leased to an agent that does not report it running is lost after this long (the
#: claim's answer never reached the agent, or the agent restarted with the same identity).
ORPHAN_GRACE = timedelta(seconds=15)


async def heartbeat(cmd: Heartbeat, uow: UnitOfWork, deps: Dependencies) -> list[str]:
    """Renew the agent's leases; the answer lists the jobs it must cancel."""
    agent = await uow.agents.get(cmd.agent_id)
    now = deps.clock.now()
    await uow.agents.touch(agent.id, now)
    reported = set(cmd.running_job_ids)
    for ref in await uow.builds.running_on(agent.id):
        if ref.job_id in reported:
            continue
        build = await uow.builds.get(ref.build_id, lock=True)
        job = build.job(ref.job_id)
        still_held = job.status == JobStatus.RUNNING and job.agent_id == agent.id
        if still_held and job.started_at is not None and now - job.started_at > ORPHAN_GRACE:
            build.lose_job(job.id, now)
            await uow.builds.save(build)
    leases = await uow.builds.job_leases(cmd.running_job_ids)
    cancel = []
    for job_id in cmd.running_job_ids:
        lease = leases.get(job_id)  # None: a job the server does not know: stop it
        if lease is None or lease.agent_id != agent.id or lease.status != JobStatus.RUNNING:
            cancel.append(job_id)
    await uow.commit()
    return cancel
