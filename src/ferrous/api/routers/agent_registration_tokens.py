"""Agent registration tokens: an admin creates one per machine (or batch), agents spend it.

Every route needs ``agents:admin``: a registration token lets a machine join and run jobs,
which see the jobs' variables and secrets. The token itself is only in the creation's answer
(``Cache-Control: no-store``); listings show how it was used, never the secret nor its hash.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Response

from ferrous.api.permissions import require
from ferrous.api.schemas.agent_registration_tokens import (
    RegistrationTokenCreate,
    RegistrationTokenCreated,
    RegistrationTokenList,
    RegistrationTokenOut,
)
from ferrous.api.schemas.common import fields_of, problems
from ferrous.api.services import ApiServices
from ferrous.application.commands import CreateRegistrationToken, RevokeRegistrationToken
from ferrous.domain.registration_token import token_state


def _fields(token: Any, now: datetime) -> dict[str, Any]:
    """The answer's fields of a token or its read view, with its state at ``now``."""
    status = token_state(
        now=now,
        revoked_at=token.revoked_at,
        expires_at=token.expires_at,
        max_uses=token.max_uses,
        uses=token.uses,
    )
    return fields_of(RegistrationTokenOut, token, status=status)


def build_router(services: ApiServices) -> APIRouter:
    router = APIRouter(prefix="/agent-registration-tokens", tags=["agents"])
    bus, queries = services.bus, services.queries

    @router.post(
        "", status_code=201, dependencies=[require("agents:admin")], responses=problems(422)
    )
    async def create_token(
        body: RegistrationTokenCreate, response: Response
    ) -> RegistrationTokenCreated:
        """Create a token for `ferrous agent --token`; the answer is the only time it is
        shown. Admin only."""
        token, plain = await bus.handle(
            CreateRegistrationToken(
                description=body.description,
                expires_in=body.expires_in_delta,
                expires_at=body.expires_at,
                max_uses=body.max_uses,
            )
        )
        response.headers["Cache-Control"] = "no-store"
        return RegistrationTokenCreated(**_fields(token, datetime.now(UTC)), token=plain)

    @router.get("", dependencies=[require("agents:admin")])
    async def list_tokens() -> RegistrationTokenList:
        """Newest first, with how often each was used; revoked and expired ones too.
        Admin only."""
        now = datetime.now(UTC)
        views = await queries.list_registration_tokens()
        return RegistrationTokenList(
            items=[RegistrationTokenOut(**_fields(view, now)) for view in views]
        )

    @router.delete(
        "/{token_id}",
        status_code=204,
        dependencies=[require("agents:admin")],
        responses=problems(404),
    )
    async def revoke_token(token_id: str) -> Response:
        """Revoke a token: no agent registers with it any more (agents that did keep
        working). Revoking again changes nothing. Admin only."""
        await bus.handle(RevokeRegistrationToken(token_id=token_id))
        return Response(status_code=204)

    return router
