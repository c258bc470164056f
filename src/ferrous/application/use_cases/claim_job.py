"""An agent asks for work: lease it the oldest pending job it can run, if it has room."""

from __future__ import annotations

from typing import Any

from ferrous.application.commands import ClaimJob
from ferrous.application.dependencies import Dependencies
from ferrous.application.job_definitions import job_payload
from ferrous.application.ports import UnitOfWork
from ferrous.application.project_credentials import unseal
from ferrous.domain.statuses import JobStatus

#: One candidate at a time: on PostgreSQL each claim locks what it looks at (SKIP LOCKED), so
#: looking at several would hide them from agents claiming at the same moment.
CANDIDATES = 1


async def claim_job(cmd: ClaimJob, uow: UnitOfWork, deps: Dependencies) -> dict[str, Any] | None:
    """The job payload for the agent, or None when there is nothing for it now."""
    agent = await uow.agents.get(cmd.agent_id)
    now = deps.clock.now()
    if len(await uow.builds.running_on(agent.id)) >= agent.capacity:
        agent.seen(now)
        await uow.agents.save(agent)
        await uow.commit()
        return None
    for ref in await uow.builds.claimable(agent.labels, CANDIDATES):
        build = await uow.builds.get(ref.build_id)
        job = build.job(ref.job_id)
        if job.status != JobStatus.PENDING or not agent.can_run(job.definition.tags):
            continue
        build.start_job(job.id, agent.id, now)
        agent.seen(now)
        await uow.builds.save(build)
        await uow.agents.save(agent)
        project = await uow.projects.get(build.project_id)
        credentials = unseal(project, deps.secret_box)  # for this agent only: it holds the lease
        log_offset = await uow.logs.size(job.id)  # a retry's log follows the earlier attempts'
        await uow.commit()
        return {
            **job_payload(build, job, project.repo_url, deps.server_url, credentials),
            "log_offset": log_offset,
        }
    return None
