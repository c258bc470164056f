"""Create a build of a pipeline at a commit: read, compile and store it in one transaction.

An invalid pipeline file still makes a build, failed, with every lint problem on it: the
person who pushed sees why nothing ran, instead of silence. In the same transaction the new
build auto-cancels the older builds of its ref that it makes redundant
(``application.auto_cancel``), so a crash leaves both or neither.
"""

from __future__ import annotations

import asyncio
import dataclasses

from ferrous.application.auto_cancel import cancel_redundant_builds
from ferrous.application.commands import TriggerBuild
from ferrous.application.dependencies import Dependencies
from ferrous.application.job_definitions import jobs_of
from ferrous.application.ports import UnitOfWork
from ferrous.application.project_credentials import unseal
from ferrous.application.secret_variables import build_is_protected
from ferrous.application.source_ports import ResolvedRef
from ferrous.application.webhook_trigger import trigger_context
from ferrous.application.webhooks import EventKind, WebhookEvent
from ferrous.domain.build import Build
from ferrous.domain.errors import Conflict, NotFound
from ferrous.domain.project import Project
from ferrous.domain.ref_kind import RefKind
from ferrous.domain.repo_credentials import RepoCredentials, without_userinfo
from ferrous.pipeline_config.compiler import compile_pipeline
from ferrous.pipeline_config.context import TriggerContext


async def trigger_build(cmd: TriggerBuild, uow: UnitOfWork, deps: Dependencies) -> Build:
    build = await create_build(cmd, uow, deps)
    await uow.commit()
    return build


async def create_build(cmd: TriggerBuild, uow: UnitOfWork, deps: Dependencies) -> Build:
    """``trigger_build`` without the commit, for callers that store more in the same
    transaction (a schedule's next tick)."""
    pipeline = await uow.pipelines.get(cmd.pipeline_id)
    if not pipeline.enabled:
        raise Conflict(f"pipeline {pipeline.name!r} is disabled")
    project = await uow.projects.get(pipeline.project_id)
    credentials = unseal(project, deps.secret_box)
    ref = cmd.ref or (None if cmd.sha else project.default_branch)
    resolved = await deps.sources.resolve(project.repo_url, cmd.sha or ref or "HEAD", credentials)
    head: str | None = resolved.sha  # where the ref points now
    if cmd.sha and ref:  # an exact commit of a branch or tag: keep what the ref says it is
        named = await deps.sources.resolve(project.repo_url, ref, credentials)
        resolved = ResolvedRef(sha=resolved.sha, branch=named.branch, tag=named.tag)
        head = named.sha
    elif cmd.sha:
        head = None
    tree = await deps.sources.checkout(project.repo_url, resolved.sha, credentials)
    info = await deps.sources.commit_info(project.repo_url, resolved.sha, credentials)
    context = TriggerContext(
        source=cmd.source,
        branch=resolved.branch if resolved.tag is None else None,
        tag=resolved.tag,
        sha=resolved.sha,
        commit_message=info.get("message", ""),
        commit_author=info.get("author", ""),
        commit_timestamp=info.get("timestamp", ""),
        default_branch=project.default_branch,
        project_name=project.name,
        project_path=project.name,
        project_url=without_userinfo(project.repo_url),
        server_url=deps.server_url,
        variables=dict(cmd.variables),
    )
    if cmd.webhook is not None:
        context = await _webhook_context(cmd.webhook, context, project, credentials, deps)
    result = await asyncio.to_thread(compile_pipeline, tree, context, file=pipeline.config_path)
    problems = [dataclasses.asdict(p) for p in result.problems]
    if not result.plan.created and not result.has_errors:
        problems.append(
            {
                "severity": "warning",
                "message": "workflow:rules create no pipeline for this trigger",
                "file": result.file,
                "line": 0,
                "column": 0,
                "path": "workflow.rules",
                "code": "workflow-never",
            }
        )
    number = await uow.pipelines.allocate_number(pipeline.id)
    now = deps.clock.now()
    build = Build.create(
        project_id=project.id,
        pipeline_id=pipeline.id,
        number=number,
        ref=context.ref_name or resolved.sha,
        ref_kind=RefKind.of(branch=context.branch, tag=context.tag),
        sha=resolved.sha,
        source=cmd.source,
        variables=dict(cmd.variables),
        jobs=jobs_of(result.plan) if result.plan.created else [],
        problems=problems,
        now=now,
        schedule_id=cmd.schedule_id,
        auto_cancel=result.plan.auto_cancel,
        protected_ref=build_is_protected(
            branch=context.branch,
            tag=context.tag,
            default_branch=project.default_branch,
            source=cmd.source,
            by_ref=cmd.webhook is not None or resolved.sha == head,
        ),
    )
    await uow.builds.add(build)
    await cancel_redundant_builds(build, head_sha=head, uow=uow, now=now)
    return build


async def _webhook_context(
    event: WebhookEvent,
    base: TriggerContext,
    project: Project,
    credentials: RepoCredentials | None,
    deps: Dependencies,
) -> TriggerContext:
    """The trigger a forge event describes, with the files it changed for ``rules:changes``:
    from the payload when it lists them all, else from git (a merge request's changes since
    it forked from its target; a push's from ``before``). None leaves every ``changes`` true,
    as GitLab does for new branches and tags."""
    context = trigger_context(event, base)
    if context.changed_files is not None or event.kind is EventKind.TAG:
        return context
    url = project.repo_url
    if event.merge_request is not None:
        try:
            target = await deps.sources.resolve(url, event.merge_request.target_branch, credentials)
        except NotFound:
            return context
        changed = await deps.sources.changed_files(
            url, target.sha, context.sha, credentials, since_merge_base=True
        )
    else:
        changed = await deps.sources.changed_files(url, event.before, context.sha, credentials)
    return dataclasses.replace(context, changed_files=None if changed is None else tuple(changed))
