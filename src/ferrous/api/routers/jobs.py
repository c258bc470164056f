"""Jobs: inspect, retry, play, and read their logs (whole, by byte range, or live)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.sse import EventSourceResponse, ServerSentEvent

from ferrous.api.log_ranges import MEDIA_TYPE, log_response
from ferrous.api.log_stream import log_events
from ferrous.api.permissions import require
from ferrous.api.schemas.builds import JobDetail
from ferrous.api.schemas.common import problems
from ferrous.api.services import ApiServices
from ferrous.application.commands import PlayJob, RetryJob
from ferrous.application.queries import JobView

LOG_HEADERS = {
    "X-Log-Size": {"description": "The log's length in bytes now.", "schema": {"type": "integer"}},
    "X-Job-Status": {"description": "The job's status now.", "schema": {"type": "string"}},
}


def resume_offset(last_event_id: str | None, offset: int) -> int:
    """A reconnecting EventSource's ``Last-Event-ID`` wins over ``?offset=``."""
    if last_event_id and last_event_id.strip().isdigit():
        return int(last_event_id.strip())
    return offset


async def existing_job(job_id: str, request: Request) -> JobView:
    """The job of the path (a dependency), so a 404 is answered before a response starts."""
    services: ApiServices = request.app.state.services
    return await services.queries.get_job(job_id)


def build_router(services: ApiServices) -> APIRouter:
    router = APIRouter(tags=["jobs"])
    bus, queries = services.bus, services.queries

    @router.get("/jobs/{job_id}", dependencies=[require("jobs:read")], responses=problems(404))
    async def get_job(job_id: str) -> JobDetail:
        """The job with the history of its attempts."""
        return JobDetail.model_validate(await queries.get_job(job_id))

    @router.post(
        "/jobs/{job_id}/retry", dependencies=[require("jobs:retry")], responses=problems(404, 409)
    )
    async def retry_job(job_id: str) -> JobDetail:
        await bus.handle(RetryJob(job_id=job_id))
        return JobDetail.model_validate(await queries.get_job(job_id))

    @router.post(
        "/jobs/{job_id}/play", dependencies=[require("jobs:play")], responses=problems(404, 409)
    )
    async def play_job(job_id: str) -> JobDetail:
        """Start a manual job."""
        await bus.handle(PlayJob(job_id=job_id))
        return JobDetail.model_validate(await queries.get_job(job_id))

    @router.get(
        "/jobs/{job_id}/log",
        dependencies=[require("logs:read")],
        response_class=Response,
        responses={
            200: {"content": {MEDIA_TYPE: {}}, "headers": LOG_HEADERS},
            206: {"description": "A byte range of the log", "content": {MEDIA_TYPE: {}}},
            **problems(404, 416),
        },
    )
    async def get_log(
        job: Annotated[JobView, Depends(existing_job)],
        range_header: Annotated[
            str | None, Header(alias="Range", description="`bytes=a-b`, `bytes=a-`, `bytes=-n`")
        ] = None,
        offset: Annotated[
            int | None, Query(ge=0, description="Send the log from this byte on (200).")
        ] = None,
    ) -> Response:
        """The raw log bytes; `Range` answers 206 with `Content-Range`."""
        return await log_response(services.logs_reader, job, range_header, offset)

    @router.get(
        "/jobs/{job_id}/log/stream",
        dependencies=[require("logs:read")],
        response_class=EventSourceResponse,
        responses=problems(404),
    )
    async def stream_log(
        job: Annotated[JobView, Depends(existing_job)],
        offset: Annotated[int, Query(ge=0, description="Start at this byte.")] = 0,
        last_event_id: Annotated[str | None, Header()] = None,
    ) -> AsyncIterator[ServerSentEvent]:
        """Server-Sent Events: the stored log from `offset` (or `Last-Event-ID`), then live
        chunks, then `event: end` with `{"status", "size"}`. Each event's `id` is the byte
        offset after it; each log event's data is the text as a JSON string."""
        async for event in log_events(services, job.id, resume_offset(last_event_id, offset)):
            yield event

    return router
