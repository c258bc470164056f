"""An agent asks for work: lease it the oldest pending job it can run, if it has room."""

from __future__ import annotations

from typing import Any

from ferrous.application.commands import ClaimJob
from ferrous.application.dependencies import Dependencies
from ferrous.application.job_definitions import job_payload
from ferrous.application.ports import UnitOfWork
from ferrous.application.project_credentials import unseal
from ferrous.application.secret_variables import job_secrets
from ferrous.domain.statuses import BuildStatus, JobStatus

#: One candidate at a time: on PostgreSQL each claim locks what it looks at (SKIP LOCKED), so
#: looking at several would hide them from agents claiming at the same moment.
CANDIDATES = 1


async def claim_job(cmd: ClaimJob, uow: UnitOfWork, deps: Dependencies) -> dict[str, Any] | None:
    """The job payload for the agent, or None when there is nothing for it now."""
    agent = await uow.agents.get(cmd.agent_id)
    now = deps.clock.now()
    if len(await uow.builds.running_on(agent.id)) >= agent.capacity:
        await uow.agents.touch(agent.id, now)
        await uow.commit()
        return None
    for ref in await uow.builds.claimable(agent.labels, CANDIDATES):
        # Not locked: agents claiming jobs of one build at once write only their own job's
        # row (``save_started``), so they neither wait for nor fail each other.
        build = await uow.builds.get(ref.build_id)
        if build.status != BuildStatus.RUNNING:
            # Its first start changes the build too: the agents starting its first jobs
            # together queue on the build instead of failing on its version.
            build = await uow.builds.get(ref.build_id, lock=True)
        job = build.job(ref.job_id)
        if job.status != JobStatus.PENDING or not agent.can_run(job.definition.tags):
            continue
        project = await uow.projects.get(build.project_id)
        credentials = unseal(project, deps.secret_box)  # for this agent only: it holds the lease
        secrets = await job_secrets(uow, deps.secret_box, build, credentials)  # likewise
        log_offset = await uow.logs.size(job.id)  # a retry's log follows the earlier attempts'
        spec = await uow.builds.job_spec(job.id)
        build.start_job(job.id, agent.id, now)
        await uow.agents.touch(agent.id, now)
        await uow.builds.save_started(build, job.id)
        await uow.commit()
        payload = job_payload(
            build,
            job,
            spec,
            project.repo_url,
            deps.server_url,
            credentials,
            max_unpacked_bytes=deps.max_unpacked_bytes,
        )
        return secrets.into({**payload, "log_offset": log_offset})
    return None
