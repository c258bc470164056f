"""Builds: trigger, list, inspect, cancel and retry runs of a pipeline."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Response

from ferrous.api.permissions import require
from ferrous.api.routers.projects import DEFAULT_PIPELINE
from ferrous.api.schemas.builds import (
    BuildDetail,
    BuildPage,
    BuildTrigger,
    build_detail,
    build_page_json,
)
from ferrous.api.schemas.common import problems
from ferrous.api.services import ApiServices
from ferrous.application.commands import CancelBuild, RetryBuild, TriggerBuild
from ferrous.application.queries import BuildFilter, Queries
from ferrous.domain.errors import NotFound
from ferrous.domain.statuses import BuildStatus


def _is_id(value: str) -> bool:
    try:
        UUID(value)
    except ValueError:
        return False
    return True


async def _project_id(queries: Queries, id_or_name: str | None) -> str | None:
    """Ids pass as they are (no query on the hot listing); names are looked up."""
    if id_or_name is None or _is_id(id_or_name):
        return id_or_name
    return (await queries.get_project(id_or_name)).id


def build_router(services: ApiServices) -> APIRouter:
    router = APIRouter(tags=["builds"])
    bus, queries = services.bus, services.queries

    async def trigger(pipeline_id: str, body: BuildTrigger, response: Response) -> BuildDetail:
        build = await bus.handle(
            TriggerBuild(
                pipeline_id=pipeline_id,
                ref=body.ref,
                sha=body.sha,
                source="api",
                variables=dict(body.variables),
            )
        )
        response.headers["Location"] = f"/api/v1/builds/{build.id}"
        return build_detail(await queries.get_build(build.id))

    @router.post(
        "/pipelines/{pipeline_id}/builds",
        status_code=201,
        dependencies=[require("builds:trigger")],
        responses=problems(404, 409, 422),
    )
    async def trigger_build(
        pipeline_id: str, body: BuildTrigger, response: Response
    ) -> BuildDetail:
        """Run the pipeline at a ref or commit. An invalid pipeline file still makes a
        build: a failed one, listing every problem of the file."""
        return await trigger(pipeline_id, body, response)

    @router.post(
        "/projects/{project}/builds",
        status_code=201,
        dependencies=[require("builds:trigger")],
        responses=problems(404, 409, 422),
    )
    async def trigger_default_build(
        project: str, body: BuildTrigger, response: Response
    ) -> BuildDetail:
        """Run the project's `default` pipeline (`project` is its id or name)."""
        project_id = (await queries.get_project(project)).id
        pipelines = await queries.list_pipelines(project_id)
        pipeline = next((p for p in pipelines if p.name == DEFAULT_PIPELINE), None)
        if pipeline is None:
            raise NotFound(f"project {project!r} has no pipeline named {DEFAULT_PIPELINE!r}")
        return await trigger(pipeline.id, body, response)

    @router.get(
        "/builds",
        dependencies=[require("builds:read")],
        response_model=BuildPage,
        responses=problems(404, 422),
    )
    async def list_builds(
        project: Annotated[str | None, Query(description="A project's id or name.")] = None,
        pipeline: Annotated[str | None, Query(description="A pipeline's id.")] = None,
        status: BuildStatus | None = None,
        ref: Annotated[str | None, Query(max_length=255)] = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        cursor: Annotated[str | None, Query(max_length=500)] = None,
    ) -> Response:
        """Newest first. Follow `next_cursor` for older builds."""
        filters = BuildFilter(
            project_id=await _project_id(queries, project),
            pipeline_id=pipeline,
            status=status.value if status else None,
            ref=ref,
            created_after=created_after,
            created_before=created_before,
        )
        page = await queries.list_builds(filters, limit=limit, cursor=cursor)
        return Response(build_page_json(page), media_type="application/json")

    @router.get(
        "/builds/{build_id}", dependencies=[require("builds:read")], responses=problems(404)
    )
    async def get_build(build_id: str) -> BuildDetail:
        """The build with its stages, jobs and the problems of its pipeline file."""
        return build_detail(await queries.get_build(build_id))

    @router.post(
        "/builds/{build_id}/cancel",
        dependencies=[require("builds:cancel")],
        responses=problems(404, 409),
    )
    async def cancel_build(build_id: str) -> BuildDetail:
        await bus.handle(CancelBuild(build_id=build_id))
        return build_detail(await queries.get_build(build_id))

    @router.post(
        "/builds/{build_id}/retry",
        dependencies=[require("builds:retry")],
        responses=problems(404, 409),
    )
    async def retry_build(build_id: str) -> BuildDetail:
        """Run the failed and canceled jobs again (as new attempts)."""
        await bus.handle(RetryBuild(build_id=build_id))
        return build_detail(await queries.get_build(build_id))

    return router
