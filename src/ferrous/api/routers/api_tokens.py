"""API tokens: everyone manages their own (``account``); admins list service tokens.

``POST /tokens`` makes a personal token, or with ``kind: service`` and ``scopes`` a service
token (admins only). The token is only in the creation's answer (``Cache-Control:
no-store``); listings show its first characters, never the token nor its hash. ``DELETE``
revokes one's own token, or any token for an admin, at once on this server.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request, Response

from ferrous.api.caller import Person, authenticator_of
from ferrous.api.permissions import require
from ferrous.api.routers.users import identities_of
from ferrous.api.schemas.api_tokens import (
    ApiTokenCreate,
    ApiTokenCreated,
    ApiTokenList,
    ApiTokenOut,
)
from ferrous.api.schemas.common import fields_of, problems
from ferrous.api.services import ApiServices
from ferrous.application.commands import CreateApiToken, RevokeApiToken
from ferrous.application.identity_queries import ApiTokenView
from ferrous.domain.api_token import ApiTokenKind, api_token_state


def _fields(view: ApiTokenView, now: datetime) -> dict[str, Any]:
    status = api_token_state(now=now, revoked_at=view.revoked_at, expires_at=view.expires_at)
    return fields_of(ApiTokenOut, view, status=status)


def build_router(services: ApiServices) -> APIRouter:
    router = APIRouter(tags=["tokens"])
    bus = services.bus

    @router.get("/tokens", dependencies=[require("account")], responses=problems(401, 403))
    async def list_tokens(person: Person) -> ApiTokenList:
        """Your personal tokens, newest first, revoked and expired ones too."""
        now = datetime.now(UTC)
        views = await identities_of(services).list_api_tokens(
            user_id=person.id, kind=ApiTokenKind.PERSONAL
        )
        return ApiTokenList(items=[ApiTokenOut(**_fields(view, now)) for view in views])

    @router.post(
        "/tokens",
        status_code=201,
        dependencies=[require("account")],
        responses=problems(401, 403, 422),
    )
    async def create_token(
        body: ApiTokenCreate, person: Person, response: Response
    ) -> ApiTokenCreated:
        """Make an API token; the answer is the only time it is shown."""
        token, plain = await bus.handle(
            CreateApiToken(
                actor=person,
                name=body.name,
                kind=body.kind,
                scopes=frozenset(body.scopes),
                expires_in=body.expires_in_delta,
                expires_at=body.expires_at,
            )
        )
        response.headers["Cache-Control"] = "no-store"
        fields = _fields(ApiTokenView.of(token), datetime.now(UTC))
        return ApiTokenCreated(**fields, token=plain)

    @router.delete(
        "/tokens/{token_id}",
        status_code=204,
        dependencies=[require("account")],
        responses=problems(401, 403, 404),
    )
    async def revoke_token(token_id: str, person: Person, request: Request) -> Response:
        """Revoke a token: it stops working at once. Revoking again changes nothing."""
        await bus.handle(RevokeApiToken(actor=person, token_id=token_id))
        authenticator_of(request).forget(token_id)
        return Response(status_code=204)

    @router.get("/service-tokens", dependencies=[require("users:admin")])
    async def list_service_tokens() -> ApiTokenList:
        """Every service token, newest first, with who made it."""
        now = datetime.now(UTC)
        views = await identities_of(services).list_api_tokens(kind=ApiTokenKind.SERVICE)
        return ApiTokenList(items=[ApiTokenOut(**_fields(view, now)) for view in views])

    return router
