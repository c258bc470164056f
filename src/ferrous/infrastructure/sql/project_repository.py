"""Projects and their pipelines."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Row, bindparam, insert, select, update

from ferrous.domain.errors import NotFound
from ferrous.domain.forge import ForgeKind, ForgeLink
from ferrous.domain.project import Pipeline, Project
from ferrous.domain.repo_credentials import SealedCredentials
from ferrous.infrastructure.sql.schema import pipelines, projects
from ferrous.infrastructure.sql.session import SqlSession

Track = Callable[[Any], None]

_PROJECT_COLUMNS = (
    projects.c.id,
    projects.c.name,
    projects.c.repo_url,
    projects.c.default_branch,
    projects.c.created_at,
    projects.c.credentials,
    projects.c.webhook_secret,
    projects.c.forge,
    projects.c.forge_api_url,
    projects.c.forge_repo,
    projects.c.forge_token,
    projects.c.artifacts_expire_in,
    projects.c.keep_latest_artifacts,
)
_PIPELINE_COLUMNS = (
    pipelines.c.id,
    pipelines.c.project_id,
    pipelines.c.name,
    pipelines.c.config_path,
    pipelines.c.enabled,
    pipelines.c.created_at,
)


def _project(row: Row[Any]) -> Project:
    return Project(
        id=row.id,
        name=row.name,
        repo_url=row.repo_url,
        default_branch=row.default_branch,
        created_at=row.created_at,
        credentials=SealedCredentials.from_text(row.credentials) if row.credentials else None,
        webhook_secret=row.webhook_secret,
        forge=forge_of_row(row),
        artifacts_expire_in=row.artifacts_expire_in,
        keep_latest_artifacts=row.keep_latest_artifacts,
    )


def forge_of_row(row: Row[Any]) -> ForgeLink | None:
    """The forge link of a row with the ``forge*`` columns of ``projects``."""
    if row.forge is None:
        return None
    return ForgeLink(
        kind=ForgeKind(row.forge),
        api_url=row.forge_api_url,
        repo=row.forge_repo,
        token=row.forge_token or "",
    )


def _forge_columns(project: Project) -> dict[str, str | None]:
    link = project.forge
    return {
        "forge": link.kind.value if link else None,
        "forge_api_url": link.api_url if link else None,
        "forge_repo": link.repo if link else None,
        "forge_token": link.token if link else None,
    }


def _credentials_text(project: Project) -> str | None:
    return project.credentials.to_text() if project.credentials is not None else None


def _pipeline(row: Row[Any]) -> Pipeline:
    return Pipeline(
        id=row.id,
        project_id=row.project_id,
        name=row.name,
        config_path=row.config_path,
        enabled=row.enabled,
        created_at=row.created_at,
    )


class SqlProjectRepository:
    def __init__(self, session: SqlSession, track: Track) -> None:
        self._session = session
        self._track = track

    async def add(self, project: Project) -> None:
        await self._session.execute_write(
            insert(projects).values(
                id=project.id,
                name=project.name,
                repo_url=project.repo_url,
                default_branch=project.default_branch,
                created_at=project.created_at,
                credentials=_credentials_text(project),
                webhook_secret=project.webhook_secret,
                **_forge_columns(project),
                artifacts_expire_in=project.artifacts_expire_in,
                keep_latest_artifacts=project.keep_latest_artifacts,
            )
        )
        self._track(project)

    async def save(self, project: Project) -> None:
        matched = await self._session.execute_write(
            update(projects)
            .where(projects.c.id == project.id)
            .values(
                repo_url=project.repo_url,
                default_branch=project.default_branch,
                credentials=_credentials_text(project),
                webhook_secret=project.webhook_secret,
                **_forge_columns(project),
                artifacts_expire_in=project.artifacts_expire_in,
                keep_latest_artifacts=project.keep_latest_artifacts,
            )
        )
        if matched == 0:
            raise NotFound(f"no project {project.id}")
        self._track(project)

    async def get(self, project_id: str) -> Project:
        return await self._one(projects.c.id == project_id, f"no project {project_id}")

    async def get_by_name(self, name: str) -> Project:
        return await self._one(projects.c.name == name, f"no project named {name!r}")

    async def _one(self, where: Any, message: str) -> Project:
        result = await self._session.execute(select(*_PROJECT_COLUMNS).where(where))
        row = result.first()
        if row is None:
            raise NotFound(message)
        return _project(row)


_SAVE_PIPELINE = (
    update(pipelines)
    .where(pipelines.c.id == bindparam("pipeline_id"))
    .values(
        name=bindparam("b_name"),
        config_path=bindparam("b_config_path"),
        enabled=bindparam("b_enabled"),
    )
)
_ALLOCATE_NUMBER = (
    update(pipelines)
    .where(pipelines.c.id == bindparam("pipeline_id"))
    .values(next_number=pipelines.c.next_number + 1)
    .returning(pipelines.c.next_number)
)


class SqlPipelineRepository:
    def __init__(self, session: SqlSession, track: Track) -> None:
        self._session = session
        self._track = track

    async def add(self, pipeline: Pipeline) -> None:
        await self._session.execute_write(
            insert(pipelines).values(
                id=pipeline.id,
                project_id=pipeline.project_id,
                name=pipeline.name,
                config_path=pipeline.config_path,
                enabled=pipeline.enabled,
                next_number=1,
                created_at=pipeline.created_at,
            )
        )
        self._track(pipeline)

    async def get(self, pipeline_id: str) -> Pipeline:
        rows = await self._select(pipelines.c.id == pipeline_id)
        if not rows:
            raise NotFound(f"no pipeline {pipeline_id}")
        return rows[0]

    async def get_by_name(self, project_id: str, name: str) -> Pipeline:
        rows = await self._select(
            (pipelines.c.project_id == project_id) & (pipelines.c.name == name)
        )
        if not rows:
            raise NotFound(f"project {project_id} has no pipeline named {name!r}")
        return rows[0]

    async def list_for_project(self, project_id: str) -> list[Pipeline]:
        return await self._select(pipelines.c.project_id == project_id)

    async def _select(self, where: Any) -> list[Pipeline]:
        statement = select(*_PIPELINE_COLUMNS).where(where).order_by(pipelines.c.name)
        result = await self._session.execute(statement)
        return [_pipeline(row) for row in result]

    async def save(self, pipeline: Pipeline) -> None:
        matched = await self._session.execute_write(
            _SAVE_PIPELINE,
            {
                "pipeline_id": pipeline.id,
                "b_name": pipeline.name,
                "b_config_path": pipeline.config_path,
                "b_enabled": pipeline.enabled,
            },
        )
        if matched == 0:
            raise NotFound(f"no pipeline {pipeline.id}")
        self._track(pipeline)

    async def allocate_number(self, pipeline_id: str) -> int:
        """Row-locked until commit on PostgreSQL, serialized by the write gate on SQLite."""
        result = await self._session.execute(
            _ALLOCATE_NUMBER, {"pipeline_id": pipeline_id}, write=True
        )
        next_number = result.scalar_one_or_none()
        if next_number is None:
            raise NotFound(f"no pipeline {pipeline_id}")
        return int(next_number) - 1
