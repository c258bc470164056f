"""Pipeline trigger tokens: a project's maintainers manage them, external systems use them.

Managing needs ``triggers:read`` / ``triggers:write``; the token is only in the creation's
answer (``Cache-Control: no-store``) and listings never show it nor its hash. The trigger
itself, GitLab's ``POST /projects/:id/trigger/pipeline``, is ``public``: the token in the
body is the check, and every refusal of it is the same 401.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request, Response

from ferrous.api.permissions import require
from ferrous.api.schemas.builds import BuildDetail, build_detail
from ferrous.api.schemas.common import fields_of, problems
from ferrous.api.schemas.trigger_tokens import (
    PipelineTrigger,
    TriggerTokenCreate,
    TriggerTokenCreated,
    TriggerTokenList,
    TriggerTokenOut,
)
from ferrous.api.services import ApiServices
from ferrous.api.trigger_form import read_trigger
from ferrous.application.commands import CreateTriggerToken, RevokeTriggerToken, RunTrigger
from ferrous.domain.trigger_token import trigger_token_state

_FORM = {"type": "object", "properties": {"token": {}, "ref": {}, "variables[KEY]": {}}}
TRIGGER_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": PipelineTrigger.model_json_schema()},
            "application/x-www-form-urlencoded": {"schema": _FORM},
            "multipart/form-data": {"schema": _FORM},
        },
    }
}


def _fields(token: Any, now: datetime) -> dict[str, Any]:
    """The answer's fields of a token or its read view, with its state at ``now``."""
    status = trigger_token_state(now=now, revoked_at=token.revoked_at, expires_at=token.expires_at)
    return fields_of(TriggerTokenOut, token, status=status)


def build_router(services: ApiServices) -> APIRouter:
    router = APIRouter(prefix="/projects/{project}", tags=["triggers"])
    bus, queries = services.bus, services.queries

    @router.post(
        "/trigger-tokens",
        status_code=201,
        dependencies=[require("triggers:write")],
        responses=problems(404, 422),
    )
    async def create_token(
        project: str, body: TriggerTokenCreate, response: Response
    ) -> TriggerTokenCreated:
        """Create a token that starts builds of the project; the answer is the only time
        it is shown."""
        project_id = (await queries.get_project(project)).id
        token, plain = await bus.handle(
            CreateTriggerToken(
                project_id=project_id,
                description=body.description,
                expires_in=body.expires_in_delta,
                expires_at=body.expires_at,
            )
        )
        response.headers["Cache-Control"] = "no-store"
        return TriggerTokenCreated(**_fields(token, datetime.now(UTC)), token=plain)

    @router.get("/trigger-tokens", dependencies=[require("triggers:read")], responses=problems(404))
    async def list_tokens(project: str) -> TriggerTokenList:
        """Newest first, with when each was last used; revoked and expired ones too."""
        now = datetime.now(UTC)
        views = await queries.list_trigger_tokens((await queries.get_project(project)).id)
        return TriggerTokenList(items=[TriggerTokenOut(**_fields(view, now)) for view in views])

    @router.delete(
        "/trigger-tokens/{token_id}",
        status_code=204,
        dependencies=[require("triggers:write")],
        responses=problems(404),
    )
    async def revoke_token(project: str, token_id: str) -> Response:
        """Revoke a token: it starts no build any more. Revoking again changes nothing."""
        project_id = (await queries.get_project(project)).id
        await bus.handle(RevokeTriggerToken(project_id=project_id, token_id=token_id))
        return Response(status_code=204)

    @router.post(
        "/trigger/pipeline",
        status_code=201,
        dependencies=[require("public")],
        responses=problems(401, 404, 409, 413, 422),
        openapi_extra=TRIGGER_BODY,
    )
    async def trigger_pipeline(project: str, request: Request, response: Response) -> BuildDetail:
        """Start a build of the project's `default` pipeline with a trigger token, as
        GitLab's endpoint of the same path: JSON, or a form with `token`, `ref` and
        `variables[KEY]=value` (`curl -F` or `--data`). The build's
        `CI_PIPELINE_SOURCE` is `trigger`."""
        body = await read_trigger(request)
        build = await bus.handle(
            RunTrigger(
                project=project,
                token=body.token,
                ref=body.ref,
                sha=body.sha,
                variables=dict(body.variables),
            )
        )
        response.headers["Location"] = f"/api/v1/builds/{build.id}"
        return build_detail(await queries.get_build(build.id))

    return router
