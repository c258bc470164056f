"""A running agent says it is alive and what it runs; the answer says what to cancel."""

from __future__ import annotations

from datetime import timedelta

from ferrous.application.commands import Heartbeat
from ferrous.application.dependencies import Dependencies
from ferrous.application.ports import UnitOfWork
from ferrous.domain.errors import NotFound
from ferrous.domain.statuses import JobStatus

#: A job leased to an agent that does not report it running is lost after this long (the
#: claim's answer never reached the agent, or the agent restarted with the same identity).
ORPHAN_GRACE = timedelta(seconds=15)


async def heartbeat(cmd: Heartbeat, uow: UnitOfWork, deps: Dependencies) -> list[str]:
    """Renew the agent's leases; the answer lists the jobs it must cancel."""
    agent = await uow.agents.get(cmd.agent_id)
    now = deps.clock.now()
    agent.seen(now)
    await uow.agents.save(agent)
    reported = set(cmd.running_job_ids)
    for ref in await uow.builds.running_on(agent.id):
        if ref.job_id in reported:
            continue
        build = await uow.builds.get(ref.build_id)
        job = build.job(ref.job_id)
        if job.started_at is not None and now - job.started_at > ORPHAN_GRACE:
            build.lose_job(job.id, now)
            await uow.builds.save(build)
    cancel = []
    for job_id in cmd.running_job_ids:
        try:
            lease = await uow.builds.job_lease(job_id)
        except NotFound:
            cancel.append(job_id)  # a job the server does not know: stop it
            continue
        if lease.agent_id != agent.id or lease.status != JobStatus.RUNNING:
            cancel.append(job_id)
    await uow.commit()
    return cancel
