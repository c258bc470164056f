"""Register a repository as a project, with a default pipeline; or change one."""

from __future__ import annotations

from ferrous.application.commands import CreateProject, UpdateProject
from ferrous.application.dependencies import Dependencies
from ferrous.application.expiry import check_expire_in
from ferrous.application.forge_settings import apply_forge, check_forge
from ferrous.application.ports import UnitOfWork
from ferrous.application.project_credentials import seal, unseal
from ferrous.application.webhook_secret import seal_webhook_secret
from ferrous.domain.errors import Conflict, NotFound
from ferrous.domain.project import Pipeline, Project
from ferrous.domain.repo_credentials import NO_CREDENTIALS


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
    seal(cmd.credentials or NO_CREDENTIALS, project, deps.secret_box)
    if cmd.webhook_secret:
        seal_webhook_secret(cmd.webhook_secret, project, deps.secret_box)
    if cmd.forge is not None:
        apply_forge(project, cmd.forge, deps.secret_box)
    if cmd.artifacts_expire_in:
        project.artifacts_expire_in = check_expire_in(cmd.artifacts_expire_in)
    project.keep_latest_artifacts = cmd.keep_latest_artifacts
    await uow.projects.add(project)
    await uow.pipelines.add(
        Pipeline.create(project_id=project.id, name="default", config_path=None, now=now)
    )
    await uow.commit()
    return project


async def update_project(cmd: UpdateProject, uow: UnitOfWork, deps: Dependencies) -> Project:
    """The credentials are checked against the new URL; kept ones are re-checked too, so a
    project cannot end with an SSH key on an https URL."""
    project = await uow.projects.get(cmd.project_id)
    if cmd.repo_url is not None:
        project.repo_url = cmd.repo_url
    if cmd.default_branch is not None:
        project.default_branch = cmd.default_branch
    if cmd.credentials is not None:
        seal(cmd.credentials, project, deps.secret_box)
    elif cmd.repo_url is not None and project.credentials is not None:
        kept = unseal(project, deps.secret_box)
        if kept is not None:
            kept.check_url(project.repo_url)
    if cmd.webhook_secret is not None:
        seal_webhook_secret(cmd.webhook_secret, project, deps.secret_box)
    if cmd.forge is not None:
        apply_forge(project, cmd.forge, deps.secret_box)
    if cmd.repo_url is not None:
        check_forge(project)  # what was derived from the old URL must still derive
    if cmd.artifacts_expire_in is not None:
        given = cmd.artifacts_expire_in
        project.artifacts_expire_in = check_expire_in(given) if given.strip() else None
    if cmd.keep_latest_artifacts is not None:
        project.keep_latest_artifacts = cmd.keep_latest_artifacts
    await uow.projects.save(project)
    await uow.commit()
    return project
