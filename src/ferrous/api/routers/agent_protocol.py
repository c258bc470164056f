"""The agent protocol (DESIGN §5): register, claim, heartbeat, log, complete.

Every call but ``register`` carries the agent's token (``Authorization: Bearer``). A claim is
a long-poll: it answers a job as soon as one is leased to the agent, or 204 after
``claim_timeout`` seconds; it waits on the ``ClaimWaiter``, never on a fixed poll interval.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse

from ferrous.api.agent_auth import authenticated_agent
from ferrous.api.bodies import read_body
from ferrous.api.errors import LogConflict, ServerStopping
from ferrous.api.permissions import require
from ferrous.api.schemas.agents import (
    AgentCredentials,
    AgentRegistration,
    ClaimedJob,
    HeartbeatIn,
    HeartbeatOut,
    JobResult,
    JobResultAccepted,
    LogAppended,
)
from ferrous.api.schemas.common import problems
from ferrous.api.services import ApiServices, ClaimWaiter, CommandBus
from ferrous.application.commands import (
    AppendLog,
    ClaimJob,
    CompleteJob,
    Heartbeat,
    RegisterAgent,
)
from ferrous.domain.errors import Conflict
from ferrous.domain.phases import Phase

MAX_LOG_CHUNK = 4 * 1024 * 1024

AgentId = Annotated[str, Depends(authenticated_agent)]


async def claim_long_poll(
    bus: CommandBus,
    waiter: ClaimWaiter,
    agent_id: str,
    timeout: float,
    gone: Callable[[], Awaitable[bool]],
) -> dict[str, Any] | None:
    """Claim now; else wait for a wake-up and claim again, until ``timeout`` has passed.

    The waiter starts listening before each claim, so a job queued while the claim runs
    wakes it; and no job is leased to an agent that has hung up meanwhile.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout

    def stopping() -> bool:  # read afresh after each await
        return waiter.closing

    while not stopping():
        remaining = deadline - loop.time()
        waiting = asyncio.ensure_future(waiter.wait(remaining)) if remaining > 0 else None
        try:
            if waiting is not None:
                await asyncio.sleep(0)  # let the waiter register before the claim reads
            if stopping():  # began to stop meanwhile: lease nothing more
                return None
            payload: dict[str, Any] | None = await bus.handle(ClaimJob(agent_id=agent_id))
            if payload is not None or waiting is None:
                return payload
            await waiting
        finally:
            if waiting is not None and not waiting.cancel() and not waiting.cancelled():
                waiting.exception()  # done: retrieve a failure we no longer need
        if await gone():
            return None
    return None


def build_router(services: ApiServices) -> APIRouter:
    router = APIRouter(prefix="/agent", tags=["agent protocol"])
    bus = services.bus

    @router.post(
        "/register", status_code=201, dependencies=[require("public")], responses=problems(401, 422)
    )
    async def register(body: AgentRegistration) -> AgentCredentials:
        """Join with a registration token an admin created (`POST
        /agent-registration-tokens`, one use of it is counted) or with the server-wide
        bootstrap token; the answer's agent token is shown once. (Its permission is
        `public`: the registration token in the body is the check.)"""
        bootstrap = services.agent_registration_token
        is_bootstrap = bool(bootstrap) and hmac.compare_digest(
            body.token.encode(), bootstrap.encode()
        )
        agent, token = await bus.handle(
            RegisterAgent(
                name=body.name,
                labels=tuple(body.labels),
                capacity=body.capacity,
                platform=dict(body.platform),
                embedded=body.platform.get("embedded") is True,
                registration_token=None if is_bootstrap else body.token,
            )
        )
        return AgentCredentials(agent_id=agent.id, token=token)

    @router.post(
        "/claim",
        dependencies=[require("agent:protocol")],
        response_model=ClaimedJob,
        responses={204: {"description": "Nothing to run: claim again."}, **problems(401, 503)},
    )
    async def claim(request: Request, agent_id: AgentId) -> Response:
        """Long-poll for a job: 200 with the job as soon as one is leased to this agent,
        204 when none came within the server's claim timeout, 503 (`Retry-After`) when
        this server began to stop: the agent waits, then claims again (elsewhere)."""
        waiter = services.claim_waiter
        payload = await claim_long_poll(
            bus, waiter, agent_id, services.claim_timeout, request.is_disconnected
        )
        if payload is None and waiter.closing:
            raise ServerStopping()
        if payload is None:
            return Response(status_code=204)
        return JSONResponse(payload)

    @router.post(
        "/heartbeat", dependencies=[require("agent:protocol")], responses=problems(401, 422)
    )
    async def heartbeat(body: HeartbeatIn, agent_id: AgentId) -> HeartbeatOut:
        """Renew the leases of the running jobs; the answer names the ones to cancel."""
        cancel = await bus.handle(Heartbeat(agent_id=agent_id, running_job_ids=tuple(body.running)))
        return HeartbeatOut(cancel=list(cancel))

    @router.post(
        "/jobs/{job_id}/log",
        dependencies=[require("agent:protocol")],
        responses=problems(401, 404, 409, 413, 422),
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/octet-stream": {"schema": {"type": "string"}}},
            }
        },
    )
    async def append_log(
        job_id: str,
        request: Request,
        agent_id: AgentId,
        offset: Annotated[int, Query(ge=0, description="Where the chunk starts in the log.")],
    ) -> LogAppended:
        """Append the body's bytes at `offset`. Sending a chunk again is harmless; a gap or
        different bytes answer 409 with the stored `size` to resume from."""
        data = await read_body(request, MAX_LOG_CHUNK, "a log chunk")
        try:
            size = await bus.handle(
                AppendLog(agent_id=agent_id, job_id=job_id, offset=offset, data=data)
            )
        except Conflict as exc:
            raise LogConflict(await services.logs_reader.size(job_id), exc.message) from exc
        return LogAppended(size=size)

    @router.post(
        "/jobs/{job_id}/complete",
        dependencies=[require("agent:protocol")],
        responses=problems(401, 404, 409, 422),
    )
    async def complete(job_id: str, body: JobResult, agent_id: AgentId) -> JobResultAccepted:
        """Report an attempt's result; 409 when this agent no longer holds the job."""
        job = await bus.handle(
            CompleteJob(
                agent_id=agent_id,
                job_id=job_id,
                attempt=body.attempt,
                exit_code=body.exit_code,
                failure_reason=body.failure_reason,
                coverage=body.coverage,
                phases=tuple(
                    Phase(name=p.name, started_at=p.started_at, finished_at=p.finished_at)
                    for p in body.phases
                ),
            )
        )
        return JobResultAccepted(job_id=job.id, status=str(job.status))

    return router
