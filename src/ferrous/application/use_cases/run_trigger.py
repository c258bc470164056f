"""An external system starts a build with a project's pipeline trigger token.

The token is the only check (the route is public), so every way it can fail answers the
same ``InvalidCredentials`` (401), also a token of another project: whoever guesses does
not learn which projects exist or which tokens belong where. The use is stamped and the
build created in one transaction, so a trigger refused later (a disabled pipeline, an
unknown ref) leaves no trace of a use, and a revocation committed meanwhile refuses it.
"""

from __future__ import annotations

from ferrous.application.commands import RunTrigger, TriggerBuild
from ferrous.application.dependencies import Dependencies
from ferrous.application.ports import UnitOfWork
from ferrous.application.use_cases.register_agent import hash_token
from ferrous.application.use_cases.trigger_build import create_build
from ferrous.domain.build import Build
from ferrous.domain.errors import InvalidCredentials, NotFound

#: The pipeline a trigger runs: the one every project gets (GitLab has one per project).
TRIGGERED_PIPELINE = "default"


async def run_trigger(cmd: RunTrigger, uow: UnitOfWork, deps: Dependencies) -> Build:
    try:
        token = await uow.trigger_tokens.use(hash_token(cmd.token), deps.clock.now())
    except NotFound:
        raise InvalidCredentials("wrong trigger token") from None
    project = await uow.projects.get(token.project_id)
    if cmd.project not in (project.id, project.name):
        raise InvalidCredentials("wrong trigger token")
    pipeline = await uow.pipelines.get_by_name(project.id, TRIGGERED_PIPELINE)
    build = await create_build(
        TriggerBuild(
            pipeline_id=pipeline.id,
            ref=cmd.ref,
            sha=cmd.sha,
            source="trigger",
            variables=dict(cmd.variables),
        ),
        uow,
        deps,
    )
    await uow.commit()
    return build
