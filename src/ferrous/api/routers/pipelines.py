"""Pipelines: a named pipeline file of a project, which can be switched off."""

from __future__ import annotations

from fastapi import APIRouter, Response

from ferrous.api.permissions import require
from ferrous.api.schemas.common import problems
from ferrous.api.schemas.projects import PipelineCreate, PipelineList, PipelineOut
from ferrous.api.services import ApiServices
from ferrous.application.commands import CreatePipeline, DisablePipeline, EnablePipeline


def build_router(services: ApiServices) -> APIRouter:
    router = APIRouter(tags=["pipelines"])
    bus, queries = services.bus, services.queries

    @router.get(
        "/projects/{project}/pipelines",
        dependencies=[require("pipelines:read")],
        responses=problems(404),
    )
    async def list_pipelines(project: str) -> PipelineList:
        """`project` is the project's id or its name."""
        project_id = (await queries.get_project(project)).id
        pipelines = await queries.list_pipelines(project_id)
        return PipelineList(items=[PipelineOut.model_validate(p) for p in pipelines])

    @router.post(
        "/projects/{project}/pipelines",
        status_code=201,
        dependencies=[require("pipelines:write")],
        responses=problems(404, 409, 422),
    )
    async def create_pipeline(
        project: str, body: PipelineCreate, response: Response
    ) -> PipelineOut:
        project_id = (await queries.get_project(project)).id
        pipeline = await bus.handle(
            CreatePipeline(project_id=project_id, name=body.name, config_path=body.config_path)
        )
        response.headers["Location"] = f"/api/v1/pipelines/{pipeline.id}"
        return PipelineOut.model_validate(pipeline)

    @router.get(
        "/pipelines/{pipeline_id}",
        dependencies=[require("pipelines:read")],
        responses=problems(404),
    )
    async def get_pipeline(pipeline_id: str) -> PipelineOut:
        return PipelineOut.model_validate(await queries.get_pipeline(pipeline_id))

    @router.post(
        "/pipelines/{pipeline_id}/enable",
        dependencies=[require("pipelines:write")],
        responses=problems(404),
    )
    async def enable_pipeline(pipeline_id: str) -> PipelineOut:
        return PipelineOut.model_validate(await bus.handle(EnablePipeline(pipeline_id=pipeline_id)))

    @router.post(
        "/pipelines/{pipeline_id}/disable",
        dependencies=[require("pipelines:write")],
        responses=problems(404),
    )
    async def disable_pipeline(pipeline_id: str) -> PipelineOut:
        """A disabled pipeline refuses new builds (409) until enabled again."""
        return PipelineOut.model_validate(
            await bus.handle(DisablePipeline(pipeline_id=pipeline_id))
        )

    return router
