"""Schedules: run a project's pipeline by cron, in a time zone, at a ref, with variables.

Reading needs ``schedules:read`` and changing ``schedules:write``; running one now makes a
build, so it needs ``builds:trigger`` like any other trigger. The variables are shown to
whoever may read schedules: keep secrets out of them.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from ferrous.api.permissions import require
from ferrous.api.schemas.builds import BuildDetail, build_detail
from ferrous.api.schemas.common import problems
from ferrous.api.schemas.schedules import ScheduleCreate, ScheduleList, ScheduleOut, ScheduleUpdate
from ferrous.api.services import ApiServices
from ferrous.application.commands import (
    CreateSchedule,
    DeleteSchedule,
    RunSchedule,
    UpdateSchedule,
)
from ferrous.application.queries import Queries
from ferrous.domain.errors import NotFound


async def _pipeline_id(queries: Queries, project_id: str, pipeline: str) -> str:
    for view in await queries.list_pipelines(project_id):
        if pipeline in (view.name, view.id):
            return view.id
    raise NotFound(f"the project has no pipeline {pipeline!r}")


def build_router(services: ApiServices) -> APIRouter:
    router = APIRouter(tags=["schedules"])
    bus, queries = services.bus, services.queries

    @router.get(
        "/projects/{project}/schedules",
        dependencies=[require("schedules:read")],
        responses=problems(404),
    )
    async def list_schedules(project: str) -> ScheduleList:
        """Oldest first; `project` is the project's id or name."""
        project_id = (await queries.get_project(project)).id
        views = await queries.list_schedules(project_id)
        return ScheduleList(items=[ScheduleOut.model_validate(view) for view in views])

    @router.post(
        "/projects/{project}/schedules",
        status_code=201,
        dependencies=[require("schedules:write")],
        responses=problems(404, 422),
    )
    async def create_schedule(
        project: str, body: ScheduleCreate, response: Response
    ) -> ScheduleOut:
        """Run a pipeline by cron. An invalid cron expression or time zone is a 422 that
        says what is wrong."""
        project_id = (await queries.get_project(project)).id
        schedule = await bus.handle(
            CreateSchedule(
                pipeline_id=await _pipeline_id(queries, project_id, body.pipeline),
                cron=body.cron,
                timezone=body.timezone,
                ref=body.ref,
                variables=dict(body.variables),
                description=body.description,
                active=body.active,
            )
        )
        response.headers["Location"] = f"/api/v1/schedules/{schedule.id}"
        return ScheduleOut.model_validate(await queries.get_schedule(schedule.id))

    @router.get(
        "/schedules/{schedule_id}",
        dependencies=[require("schedules:read")],
        responses=problems(404),
    )
    async def get_schedule(schedule_id: str) -> ScheduleOut:
        return ScheduleOut.model_validate(await queries.get_schedule(schedule_id))

    @router.patch(
        "/schedules/{schedule_id}",
        dependencies=[require("schedules:write")],
        responses=problems(404, 409, 422),
    )
    async def update_schedule(schedule_id: str, body: ScheduleUpdate) -> ScheduleOut:
        """Change the fields given (`"ref": null` goes back to the default branch). A new
        cron, time zone or activation computes the next tick from now."""
        changes: dict[str, Any] = {name: getattr(body, name) for name in body.model_fields_set}
        for name in ("cron", "timezone", "variables", "description", "active"):
            if name in changes and changes[name] is None:
                del changes[name]  # null means "unchanged" for these; only ref has a null
        await bus.handle(UpdateSchedule(schedule_id=schedule_id, **changes))
        return ScheduleOut.model_validate(await queries.get_schedule(schedule_id))

    @router.delete(
        "/schedules/{schedule_id}",
        status_code=204,
        dependencies=[require("schedules:write")],
        responses=problems(404, 409),
    )
    async def delete_schedule(schedule_id: str) -> Response:
        """Its builds stay (they keep its id)."""
        await bus.handle(DeleteSchedule(schedule_id=schedule_id))
        return Response(status_code=204)

    @router.post(
        "/schedules/{schedule_id}/run",
        status_code=201,
        dependencies=[require("builds:trigger")],
        responses=problems(404, 409),
    )
    async def run_schedule(schedule_id: str, response: Response) -> BuildDetail:
        """Run the schedule's pipeline now, as its cron would (`CI_PIPELINE_SOURCE` is
        `schedule`); its next tick does not move."""
        build = await bus.handle(RunSchedule(schedule_id=schedule_id))
        response.headers["Location"] = f"/api/v1/builds/{build.id}"
        return build_detail(await queries.get_build(build.id))

    return router
