"""A chunk of a job's log, stored at its byte offset; only the lease holder writes."""

from __future__ import annotations

from ferrous.application.commands import AppendLog
from ferrous.application.dependencies import Dependencies
from ferrous.application.ports import UnitOfWork
from ferrous.domain.errors import Conflict
from ferrous.domain.statuses import JobStatus


async def append_log(cmd: AppendLog, uow: UnitOfWork, deps: Dependencies) -> int:
    """Store a chunk at its byte offset; returns the log's length. Only the lease holder writes."""
    lease = await uow.builds.job_lease(cmd.job_id)
    if lease.agent_id != cmd.agent_id or lease.status != JobStatus.RUNNING:
        raise Conflict("this agent does not hold the job's lease")
    size = await uow.logs.append(cmd.job_id, cmd.offset, cmd.data)
    await uow.commit()
    return size
