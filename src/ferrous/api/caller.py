"""The caller of a route that acts on its own account: ``Authorization: Bearer <token>``.

The token is an access token (``POST /api/v1/auth/login``) or an API token (``fpt_``,
``fst_``), resolved by the ``Authenticator`` in ``ApiServices``. The principal found is put
in ``request.state.principal``, where the audit log and the rate limits look for it. Every
refusal is 401 with ``WWW-Authenticate: Bearer``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ferrous.api.errors import Unauthenticated
from ferrous.api.services import ApiServices
from ferrous.application.authentication import Authentication, Authenticator
from ferrous.domain.access import Principal, PrincipalKind
from ferrous.domain.errors import InvalidCredentials, PermissionDenied

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="BearerToken",
    description="An access token from `POST /api/v1/auth/login`, or an API token "
    "(`fpt_...` personal, `fst_...` service).",
)


def authenticator_of(request: Request) -> Authenticator:
    services: ApiServices = request.app.state.services
    if services.authenticator is None:
        raise Unauthenticated("this server has no user accounts")
    return services.authenticator


async def authentication(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Authentication:
    """The caller and, for an access token, its session (a FastAPI dependency)."""
    if credentials is None or not credentials.credentials:
        raise Unauthenticated("this call needs a token: Authorization: Bearer <token>")
    try:
        found = await authenticator_of(request).authenticate(credentials.credentials)
    except InvalidCredentials as exc:
        raise Unauthenticated(exc.message) from exc
    request.state.principal = found.principal
    return found


async def caller(found: Annotated[Authentication, Depends(authentication)]) -> Principal:
    return found.principal


async def person(found: Annotated[Authentication, Depends(authentication)]) -> Principal:
    """The caller, who must be a person (not a service token): their own account."""
    if found.principal.kind != PrincipalKind.USER:
        raise PermissionDenied("only a person has an account; a service token has none")
    return found.principal


Caller = Annotated[Principal, Depends(caller)]
Person = Annotated[Principal, Depends(person)]
Authenticated = Annotated[Authentication, Depends(authentication)]
