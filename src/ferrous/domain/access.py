"""Who may do what: roles, the permissions routes declare, and the one table joining them.

Every API route declares one permission (``api.permissions.require``); a caller is a
``Principal`` (a person by password, JWT or personal API token; a service token; an agent)
and ``Principal.may`` answers from ``GRANTS``. The table is the whole policy: the route x
role test reads it, and the docs print it.

- viewer: read everything but secrets' values (never readable) and the audit log.
- developer: also trigger, cancel, retry, play, and manage pipelines, schedules, trigger
  tokens and project secrets (they can print any unprotected secret from a job anyway).
- admin: everything, including users, agents, instance secrets and the audit log.
- service: only the scopes its token was given (a subset of these permissions).
``account`` is what every signed-in person may do to themselves (their own API tokens,
logout); ``public`` needs nobody; ``agent:protocol`` only an agent token.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal, get_args

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
    "agents:admin",  # agent registration tokens: whoever holds one adds machines that run jobs
    "schedules:read",
    "schedules:write",
    "triggers:read",  # a project's pipeline trigger tokens (never their secrets)
    "triggers:write",  # create and revoke them: a token starts builds without an account
    "secrets:read",  # names, scopes and dates of project secrets (never the values)
    "secrets:write",
    "instance_secrets:admin",  # secrets of every project
    "users:admin",
    "audit:read",
    "account",  # one's own tokens and session
    "agent:protocol",
    "public",
]
PERMISSIONS: frozenset[str] = frozenset(get_args(Permission))


class Role(StrEnum):
    ADMIN = "admin"
    DEVELOPER = "developer"
    VIEWER = "viewer"
    SERVICE = "service"


_VIEWER = frozenset(
    {
        "projects:read",
        "pipelines:read",
        "builds:read",
        "jobs:read",
        "logs:read",
        "agents:read",
        "schedules:read",
        "triggers:read",
        "secrets:read",
        "account",
        "public",
    }
)
_DEVELOPER = _VIEWER | {
    "projects:write",
    "pipelines:write",
    "builds:trigger",
    "builds:cancel",
    "builds:retry",
    "jobs:retry",
    "jobs:play",
    "schedules:write",
    "triggers:write",
    "secrets:write",
}
_ADMIN = PERMISSIONS - {"agent:protocol"}

#: The policy. A service's grant is its token's scopes (``Principal.scopes``), never more
#: than a person could be given, and never ``account`` (a service has no session).
GRANTS: dict[Role, frozenset[str]] = {
    Role.ADMIN: frozenset(_ADMIN),
    Role.DEVELOPER: frozenset(_DEVELOPER),
    Role.VIEWER: _VIEWER,
    Role.SERVICE: frozenset({"public"}),
}
#: What a service token may be given.
SERVICE_SCOPES: frozenset[str] = PERMISSIONS - {"agent:protocol", "public", "account"}


class PrincipalKind(StrEnum):
    USER = "user"  # a person: password login (JWT) or a personal API token
    SERVICE = "service"  # a service token with scopes
    AGENT = "agent"


@dataclass(frozen=True, slots=True, kw_only=True)
class Principal:
    """The authenticated caller of one request."""

    kind: PrincipalKind
    id: str  # the user's, the service token's or the agent's id
    name: str  # username, token name or agent name: what the audit log shows
    role: Role
    scopes: frozenset[str] = frozenset()  # a service token's grant
    token_id: str | None = None  # the API token or session that authenticated the call

    def may(self, permission: str) -> bool:
        if permission == "public":
            return True
        if self.kind == PrincipalKind.AGENT:
            return permission == "agent:protocol"
        if self.kind == PrincipalKind.SERVICE:
            return permission in self.scopes and permission in SERVICE_SCOPES
        return permission in GRANTS[self.role]


def role_may(role: Role | None, permission: str) -> bool:
    """What a plain role may (None: anonymous), for the route x role table."""
    if permission == "public":
        return True
    if role is None:
        return False
    return permission in GRANTS[role]
