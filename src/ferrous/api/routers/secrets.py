"""Secret variables: a project's (``secrets:read`` / ``secrets:write``) and the instance's,
every project's (``instance_secrets:admin``).

``PUT`` creates (201) or replaces (200) a variable by name; a value goes in and never comes
out: no answer, listing or error message holds it, sealed or not. Validation problems (a
name a shell would refuse, a masked value shorter than 8 characters or of several lines)
are 422 with the reason.
"""

from __future__ import annotations

from fastapi import APIRouter, Response

from ferrous.api.permissions import require
from ferrous.api.schemas.common import problems
from ferrous.api.schemas.secrets import SecretVariableIn, SecretVariableList, SecretVariableOut
from ferrous.api.services import ApiServices
from ferrous.application.commands import DeleteSecretVariable, SetSecretVariable


def build_router(services: ApiServices) -> APIRouter:
    router = APIRouter(tags=["secrets"])
    bus, queries = services.bus, services.queries

    async def put(
        project_id: str | None, name: str, body: SecretVariableIn, response: Response
    ) -> SecretVariableOut:
        secret, created = await bus.handle(
            SetSecretVariable(
                project_id=project_id,
                name=name,
                value=body.value,
                protected=body.protected,
                masked=body.masked,
            )
        )
        response.status_code = 201 if created else 200
        return SecretVariableOut.model_validate(secret)

    async def listed(project_id: str | None) -> SecretVariableList:
        views = await queries.list_secret_variables(project_id)
        return SecretVariableList(items=[SecretVariableOut.model_validate(v) for v in views])

    @router.get(
        "/projects/{project}/secrets",
        dependencies=[require("secrets:read")],
        responses=problems(404),
    )
    async def list_project_secrets(project: str) -> SecretVariableList:
        """The project's own secret variables, by name, without their values."""
        return await listed((await queries.get_project(project)).id)

    @router.put(
        "/projects/{project}/secrets/{name}",
        dependencies=[require("secrets:write")],
        responses={201: {"model": SecretVariableOut}, **problems(404, 409, 422)},
    )
    async def set_project_secret(
        project: str, name: str, body: SecretVariableIn, response: Response
    ) -> SecretVariableOut:
        """Create (201) or replace (200) the project's secret variable `name`; the answer
        never holds the value."""
        return await put((await queries.get_project(project)).id, name, body, response)

    @router.delete(
        "/projects/{project}/secrets/{name}",
        status_code=204,
        dependencies=[require("secrets:write")],
        responses=problems(404),
    )
    async def delete_project_secret(project: str, name: str) -> Response:
        """Delete the project's secret variable: later jobs no longer get it."""
        project_id = (await queries.get_project(project)).id
        await bus.handle(DeleteSecretVariable(project_id=project_id, name=name))
        return Response(status_code=204)

    @router.get("/secrets", dependencies=[require("instance_secrets:admin")])
    async def list_instance_secrets() -> SecretVariableList:
        """The instance's secret variables (every project's jobs get them), by name."""
        return await listed(None)

    @router.put(
        "/secrets/{name}",
        dependencies=[require("instance_secrets:admin")],
        responses={201: {"model": SecretVariableOut}, **problems(409, 422)},
    )
    async def set_instance_secret(
        name: str, body: SecretVariableIn, response: Response
    ) -> SecretVariableOut:
        """Create (201) or replace (200) the instance variable `name`; a project variable of
        the same name replaces it in that project's jobs."""
        return await put(None, name, body, response)

    @router.delete(
        "/secrets/{name}",
        status_code=204,
        dependencies=[require("instance_secrets:admin")],
        responses=problems(404),
    )
    async def delete_instance_secret(name: str) -> Response:
        """Delete an instance variable: later jobs no longer get it."""
        await bus.handle(DeleteSecretVariable(project_id=None, name=name))
        return Response(status_code=204)

    return router
