"""Register a repository as a project, with a default pipeline."""

from __future__ import annotations

from ferrous.application.commands import CreateProject
from ferrous.application.dependencies import Dependencies
from ferrous.application.ports import UnitOfWork
from ferrous.domain.errors import Conflict, NotFound
from ferrous.domain.project import Pipeline, Project


async def create_project(cmd: CreateProject, uow: UnitOfWork, deps: Dependencies) -> Project:
    try:
        await uow.projects.get_by_name(cmd.name)
    except NotFound:
        pass
    else:
        raise Conflict(f"a project named {cmd.name!r} exists already")
    now = deps.clock.now()
    project = Project.create(
        name=cmd.name, repo_url=cmd.repo_url, default_branch=cmd.default_branch, now=now
    )
    await uow.projects.add(project)
    await uow.pipelines.add(
        Pipeline.create(project_id=project.id, name="default", config_path=None, now=now)
    )
    await uow.commit()
    return project
