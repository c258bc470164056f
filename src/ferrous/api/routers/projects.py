"""Projects: a repository Ferrous CI builds, with a default pipeline."""

from __future__ import annotations

from fastapi import APIRouter, Response

from ferrous.api.permissions import require
from ferrous.api.schemas.common import problems
from ferrous.api.schemas.forge import forge_settings_of
from ferrous.api.schemas.projects import (
    ProjectCreate,
    ProjectDetail,
    ProjectList,
    ProjectOut,
    ProjectUpdate,
    credentials_of,
)
from ferrous.api.services import ApiServices
from ferrous.application.commands import CreateProject, UpdateProject
from ferrous.application.queries import Queries

DEFAULT_PIPELINE = "default"


async def project_detail(queries: Queries, id_or_name: str) -> ProjectDetail:
    project = await queries.get_project(id_or_name)
    pipelines = await queries.list_pipelines(project.id)
    default = next((p.id for p in pipelines if p.name == DEFAULT_PIPELINE), None)
    return ProjectDetail.model_validate(
        {**ProjectOut.model_validate(project).model_dump(), "default_pipeline_id": default}
    )


def build_router(services: ApiServices) -> APIRouter:
    router = APIRouter(tags=["projects"])
    bus, queries = services.bus, services.queries

    @router.post(
        "/projects",
        status_code=201,
        dependencies=[require("projects:write")],
        responses=problems(409, 422),
    )
    async def create_project(body: ProjectCreate, response: Response) -> ProjectDetail:
        """Register a repository; it gets a pipeline named `default` (`.ferrous.yml`).

        `credentials` (an HTTPS token or an SSH deploy key) are stored sealed and never
        returned, like `forge_token`: with `forge` set, each build posts its status to the
        commit on GitHub, GitLab or Gitea."""
        project = await bus.handle(
            CreateProject(
                name=body.name,
                repo_url=body.repo_url,
                default_branch=body.default_branch,
                credentials=credentials_of(body.credentials),
                webhook_secret=body.webhook_secret,
                forge=forge_settings_of(body),
                artifacts_expire_in=body.artifacts_expire_in,
                keep_latest_artifacts=body.keep_latest_artifacts,
            )
        )
        response.headers["Location"] = f"/api/v1/projects/{project.id}"
        return await project_detail(queries, project.id)

    @router.get("/projects", dependencies=[require("projects:read")])
    async def list_projects() -> ProjectList:
        return ProjectList(
            items=[ProjectOut.model_validate(p) for p in await queries.list_projects()]
        )

    @router.get(
        "/projects/{project}",
        dependencies=[require("projects:read")],
        responses=problems(404),
    )
    async def get_project(project: str) -> ProjectDetail:
        """`project` is the project's id or its name."""
        return await project_detail(queries, project)

    @router.patch(
        "/projects/{project}",
        dependencies=[require("projects:write")],
        responses=problems(404, 422),
    )
    async def update_project(project: str, body: ProjectUpdate) -> ProjectDetail:
        """Change the repository URL, the default branch, the credentials, the forge, the
        artifacts' default expiry or whether each ref's latest artifacts are kept."""
        found = await queries.get_project(project)
        await bus.handle(
            UpdateProject(
                project_id=found.id,
                repo_url=body.repo_url,
                default_branch=body.default_branch,
                credentials=credentials_of(body.credentials),
                webhook_secret=body.webhook_secret,
                forge=forge_settings_of(body),
                artifacts_expire_in=body.artifacts_expire_in,
                keep_latest_artifacts=body.keep_latest_artifacts,
            )
        )
        return await project_detail(queries, found.id)

    return router
