"""Signing in with a password, refreshing, signing out, and who the caller is.

Login and refresh are ``public``: the password or the refresh token is the check. Failed
logins are counted per account and per address (``app.state.login_throttle``); every
refusal is the same 401, whatever was wrong. Answers that carry tokens are never cached.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from ferrous.api.caller import Authenticated, Caller, authenticator_of
from ferrous.api.client_ip import client_ip
from ferrous.api.permissions import require
from ferrous.api.rate_limits import LoginThrottle
from ferrous.api.schemas.auth import LoginBody, Me, RefreshBody, TokenPair
from ferrous.api.schemas.common import problems
from ferrous.api.services import ApiServices
from ferrous.application.commands import Login, Logout, RefreshSession
from ferrous.application.use_cases.sign_in import SignedIn
from ferrous.domain.access import PERMISSIONS
from ferrous.domain.errors import InvalidCredentials, InvalidValue


def _pair(signed: SignedIn, response: Response) -> TokenPair:
    response.headers["Cache-Control"] = "no-store"
    return TokenPair(
        access_token=signed.access_token,
        refresh_token=signed.refresh_token,
        expires_in=signed.expires_in,
    )


def build_router(services: ApiServices) -> APIRouter:
    router = APIRouter(prefix="/auth", tags=["auth"])
    bus = services.bus

    @router.post("/login", dependencies=[require("public")], responses=problems(401, 422, 429))
    async def login(body: LoginBody, request: Request, response: Response) -> TokenPair:
        """Sign in with a username and password: an access token (minutes) and a refresh
        token (one use; the session lasts days)."""
        throttle: LoginThrottle = request.app.state.login_throttle
        address = client_ip(request.scope)
        request.state.audit_actor = body.username  # failed sign-ins are attributed too
        await throttle.check(body.username, address)
        try:
            signed = await bus.handle(Login(username=body.username, password=body.password))
        except InvalidCredentials:
            await throttle.failed(body.username, address)
            raise
        await throttle.succeeded(body.username, address)
        return _pair(signed, response)

    @router.post("/refresh", dependencies=[require("public")], responses=problems(401, 422))
    async def refresh(body: RefreshBody, response: Response) -> TokenPair:
        """Trade the session's refresh token for a new pair. A refresh token works once:
        presenting one again ends the session (it was copied)."""
        return _pair(await bus.handle(RefreshSession(refresh_token=body.refresh_token)), response)

    @router.post(
        "/logout", status_code=204, dependencies=[require("account")], responses=problems(401, 422)
    )
    async def logout(found: Authenticated, request: Request) -> Response:
        """End the session of this access token: its refresh token and every access token
        of the session stop working."""
        if found.session_id is None:
            raise InvalidValue(
                "logout ends a password sign-in; revoke an API token with "
                "DELETE /api/v1/tokens/{id}"
            )
        await bus.handle(Logout(user_id=found.principal.id, session_id=found.session_id))
        authenticator_of(request).forget(found.session_id)
        return Response(status_code=204)

    @router.get("/me", dependencies=[require("account")], responses=problems(401))
    async def me(principal: Caller) -> Me:
        """Who the token belongs to, and what it may do now."""
        return Me(
            kind=principal.kind.value,
            id=principal.id,
            name=principal.name,
            role=principal.role.value,
            scopes=sorted(principal.scopes),
            permissions=sorted(p for p in PERMISSIONS if principal.may(p)),
        )

    return router
