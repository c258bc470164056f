"""Every route declares the one permission it needs: ``dependencies=[require("builds:read")]``.

``require`` returns a FastAPI dependency that checks the permission and carries its name, so
``route_permissions(app)`` can list what each route declared (a test insists on exactly one
per route, and each OpenAPI operation shows it as ``x-permission``). Until users and tokens
exist every person is allowed; the agent protocol already needs the agent's token.

Who will hold what (DESIGN §7): viewer the ``*:read`` ones; developer also trigger, cancel,
retry, play and ``*:write``; admin everything, and only admin ``agents:admin`` (agent
registration tokens: whoever holds one can add machines that run jobs and see their secrets).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, Literal, get_args

from fastapi import Depends, FastAPI
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts

from ferrous.api.agent_auth import authenticated_agent

Permission = Literal[
    "projects:read",
    "projects:write",
    "pipelines:read",
    "pipelines:write",
    "builds:read",
    "builds:trigger",
    "builds:cancel",
    "builds:retry",
    "jobs:read",
    "jobs:retry",
    "jobs:play",
    "logs:read",
    "agents:read",
    "agents:admin",  # admin only: agent registration tokens
    "schedules:read",
    "schedules:write",
    "triggers:read",  # a project's pipeline trigger tokens (never their secrets)
    "triggers:write",  # create and revoke them: a token starts builds without an account
    "agent:protocol",
    "public",
]
PERMISSIONS: frozenset[str] = frozenset(get_args(Permission))
_ATTRIBUTE = "ferrous_permission"


def require(permission: Permission) -> Any:
    """The dependency that guards a route with ``permission`` (for ``dependencies=[...]``)."""
    if permission not in PERMISSIONS:
        raise ValueError(f"unknown permission {permission!r}")
    return Depends(_checker(permission))


@functools.cache
def _checker(permission: str) -> Callable[..., Awaitable[Any]]:
    if permission == "agent:protocol":
        checker: Callable[..., Awaitable[Any]] = authenticated_agent
    else:

        async def allow() -> None:
            """Everyone may, until users, roles and API tokens arrive."""

        allow.__name__ = allow.__qualname__ = "allow_" + permission.replace(":", "_")
        checker = allow
    setattr(checker, _ATTRIBUTE, permission)
    return checker


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
    """``"GET /api/v1/builds" -> ["builds:read"]`` for every route of the app."""
    table: dict[str, list[str]] = {}
    for route in iter_route_contexts(app.routes):
        permissions = declared_permissions(route)
        for method in sorted(route.methods or ["*"]):
            table[f"{method} {route.path}"] = permissions
    return table


def document_permissions(app: FastAPI, schema: dict[str, Any]) -> None:
    """Show each operation's permission in the OpenAPI document (``x-permission``)."""
    for route, permissions in route_permissions(app).items():
        method, _, path = route.partition(" ")
        operation = schema.get("paths", {}).get(path, {}).get(method.lower())
        if operation is not None and len(permissions) == 1:
            operation["x-permission"] = permissions[0]
