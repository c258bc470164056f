"""Every route declares the one permission it needs: ``dependencies=[require("builds:read")]``.

``require`` returns a FastAPI dependency that checks the permission and carries its name, so
``route_permissions(app)`` can list what each route declared (a test insists on exactly one
per route, and each OpenAPI operation shows it as ``x-permission``). The check:

- ``public``: nobody signs in (the route may check its own secret: a webhook's signature,
  a trigger token, a password, a registration token);
- ``agent:protocol``: the agent's own token (``api.agent_auth``), nothing else;
- any other: a person's or a service's token (``api.caller``: 401 problem+json with
  ``WWW-Authenticate: Bearer`` without a usable one), then ``Principal.may`` answers from
  the one table, ``domain.access.GRANTS`` (403 problem+json when it says no).

A token of one kind never passes for another: an agent token is no caller's token, and a
person's or a service's token names no agent. The dependencies name their bearer schemes,
so the OpenAPI document shows which operations need which token.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts

from ferrous.api.agent_auth import authenticated_agent
from ferrous.api.caller import Authenticated
from ferrous.domain.access import PERMISSIONS, Permission, Principal, PrincipalKind
from ferrous.domain.errors import PermissionDenied

_ATTRIBUTE = "ferrous_permission"
_CONVERTER = re.compile(r"\{(\w+):\w+\}")  # `{path:path}` -> `{path}`


def require(permission: Permission) -> Any:
    """The dependency that guards a route with ``permission`` (for ``dependencies=[...]``)."""
    if permission not in PERMISSIONS:
        raise ValueError(f"unknown permission {permission!r}")
    return Depends(_checker(permission))


@functools.cache
def _checker(permission: str) -> Callable[..., Awaitable[Any]]:
    checker: Callable[..., Awaitable[Any]]
    if permission == "agent:protocol":
        checker = authenticated_agent
    elif permission == "public":

        async def anyone() -> None:
            """Nobody signs in here; the route checks its own secret, if it has one."""

        checker = anyone
    else:

        async def check(found: Authenticated) -> Principal:
            principal = found.principal
            if not principal.may(permission):
                raise PermissionDenied(refusal(principal, permission))
            return principal

        check.__name__ = check.__qualname__ = "require_" + permission.replace(":", "_")
        checker = check
    setattr(checker, _ATTRIBUTE, permission)
    return checker


def refusal(principal: Principal, permission: str) -> str:
    """What a 403 says: who asked, and what they lack (never what else they could do)."""
    if principal.kind == PrincipalKind.SERVICE:
        return f"the service token {principal.name!r} has no scope {permission!r}"
    return f"{principal.name} ({principal.role.value}) may not do this: it needs {permission!r}"


def declared_permissions(route: RouteContext) -> list[str]:
    """The permissions a route declared with ``require`` (its own and its routers')."""
    if not isinstance(route.original_route, APIRoute):
        return []
    return [
        permission
        for dependency in route.dependencies
        if (permission := getattr(dependency.dependency, _ATTRIBUTE, None)) is not None
    ]


def route_permissions(app: FastAPI) -> dict[str, list[str]]:
    """``"GET /api/v1/builds" -> ["builds:read"]`` for every route of the app, its path as
    the OpenAPI document writes it (``{path}``, not ``{path:path}``)."""
    table: dict[str, list[str]] = {}
    for route in iter_route_contexts(app.routes):
        permissions = declared_permissions(route)
        path = _CONVERTER.sub(r"{\1}", route.path or "")
        for method in sorted(route.methods or ["*"]):
            table[f"{method} {path}"] = permissions
    return table


def document_permissions(app: FastAPI, schema: dict[str, Any]) -> None:
    """Show each operation's permission in the OpenAPI document (``x-permission``)."""
    for route, permissions in route_permissions(app).items():
        method, _, path = route.partition(" ")
        operation = schema.get("paths", {}).get(path, {}).get(method.lower())
        if operation is not None and len(permissions) == 1:
            operation["x-permission"] = permissions[0]
