"""Signed-in callers for tests: people and services with real API tokens.

For an app built in the test's process, ``people()`` puts one user per role (``admin``,
``developer``, ``viewer``) and a personal API token each straight into an in-memory store,
and gives the ``Authenticator`` that reads it: the API checks these tokens as it checks
any. For a real ``ferrous serve``, ``server_token`` signs in as the first admin (whose
password the test chose with ``FERROUS_ADMIN_PASSWORD``) and makes a personal API token,
which httpx clients send as a header and CLI processes get as ``FERROUS_TOKEN``.
"""

from __future__ import annotations

import secrets
import ssl
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import httpx

from ferrous.application.authentication import Authenticator
from ferrous.application.dependencies import SystemClock
from ferrous.application.identity_ports import AccessTokens
from ferrous.application.ports import Clock
from ferrous.application.use_cases.register_agent import hash_token
from ferrous.domain.access import Role
from ferrous.domain.api_token import (
    PERSONAL_TOKEN_PREFIX,
    SERVICE_TOKEN_PREFIX,
    ApiToken,
    ApiTokenKind,
)
from ferrous.domain.user import User
from ferrous.infrastructure.memory import InMemoryStore, memory_uow_factory

#: the first admin's password of the servers the end-to-end tests start
ADMIN_PASSWORD = "end-to-end admin password"
PERSON_ROLES = (Role.ADMIN, Role.DEVELOPER, Role.VIEWER)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class People:
    """Users and tokens in ``store``; ``tokens`` by username (``admin``, ``developer``, ...)."""

    store: InMemoryStore
    authenticator: Authenticator
    clock: Clock
    tokens: dict[str, str] = field(default_factory=dict)

    def headers(self, who: str = "admin") -> dict[str, str]:
        return bearer(self.tokens[who])

    def user(self, username: str, role: Role) -> User:
        """A person with a personal token (``tokens[username]``)."""
        user = User.create(username=username, role=role, now=self.clock.now())
        self.store.users[user.id] = user
        self.tokens[username] = self.token(user, ApiTokenKind.PERSONAL)
        return user

    def service(self, name: str, *scopes: str) -> str:
        """A service token with these scopes, made by the admin."""
        admin = next(u for u in self.store.users.values() if u.role == Role.ADMIN)
        self.tokens[name] = self.token(admin, ApiTokenKind.SERVICE, frozenset(scopes), name)
        return self.tokens[name]

    def token(
        self,
        user: User,
        kind: ApiTokenKind,
        scopes: frozenset[str] = frozenset(),
        name: str = "tests",
        expires_in: timedelta | None = None,
    ) -> str:
        prefix = PERSONAL_TOKEN_PREFIX if kind == ApiTokenKind.PERSONAL else SERVICE_TOKEN_PREFIX
        plain = prefix + secrets.token_urlsafe(24)
        now = self.clock.now()
        token = ApiToken.issue(
            user_id=user.id,
            name=name,
            kind=kind,
            plain=plain,
            token_hash=hash_token(plain),
            now=now,
            scopes=scopes,
            expires_at=now + expires_in if expires_in is not None else None,
        )
        self.store.api_tokens[token.id] = token
        return plain

    def revoke(self, plain: str, at: datetime | None = None) -> None:
        token_hash = hash_token(plain)
        token = next(t for t in self.store.api_tokens.values() if t.token_hash == token_hash)
        token.revoke(at or self.clock.now())


def people(
    store: InMemoryStore | None = None,
    *,
    clock: Clock | None = None,
    access_tokens: AccessTokens | None = None,
    cache_seconds: float = 0.0,
) -> People:
    """``admin``, ``developer`` and ``viewer``, each with a personal token, in ``store``."""
    store = store if store is not None else InMemoryStore()
    clock = clock or SystemClock()
    authenticator = Authenticator(
        memory_uow_factory(store), access_tokens, clock, cache_seconds=cache_seconds
    )
    found = People(store, authenticator, clock)
    for role in PERSON_ROLES:
        found.user(role.value, role)
    return found


def server_token(
    base_url: str, password: str = ADMIN_PASSWORD, verify: ssl.SSLContext | bool = True
) -> str:
    """A personal API token of the first admin of the server at ``base_url``."""
    api = base_url.rstrip("/") + "/api/v1"
    with httpx.Client(base_url=api, timeout=30.0, verify=verify) as http:
        signed = http.post("/auth/login", json={"username": "admin", "password": password})
        signed.raise_for_status()
        access = bearer(signed.json()["access_token"])
        created = http.post("/tokens", json={"name": "tests"}, headers=access)
        created.raise_for_status()
        http.post("/auth/logout", headers=access).raise_for_status()
    return str(created.json()["token"])
