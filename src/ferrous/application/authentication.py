"""Who is calling: a bearer token in, a ``Principal`` out, or ``InvalidCredentials``.

Three kinds of token name a caller here, told apart by their form:

- an access token (a JWT, from signing in): its signature and expiry are checked, then its
  session must not be revoked and its user must still be active; the role is the user's
  role now, not the one written in the token;
- a personal API token (``fpt_``): its user must be active; the caller is that user;
- a service token (``fst_``): the caller is the token, with its scopes only.

Anything else is refused: agent tokens, agent registration, trigger and refresh tokens
have their own endpoints, and an unknown, expired, revoked or tampered token is refused
alike. The database answers are cached for a few seconds (a UI sends many requests at
once); ``forget`` drops what is cached about a session, token or user, so that a logout or
a revocation on this server takes effect at its next request. Other servers notice
within the cache's few seconds. A token's ``last_used_at`` is stamped at most once a minute.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from ferrous.application.identity_ports import AccessClaims, AccessTokens
from ferrous.application.ports import Clock, UnitOfWork
from ferrous.application.use_cases.register_agent import hash_token
from ferrous.domain.access import Principal, PrincipalKind, Role
from ferrous.domain.api_token import PERSONAL_TOKEN_PREFIX, SERVICE_TOKEN_PREFIX, ApiTokenKind
from ferrous.domain.errors import InvalidCredentials, NotFound
from ferrous.domain.session import REFRESH_TOKEN_PREFIX

MAX_CACHED = 4096
UNKNOWN_TOKEN = "unknown or invalid token"


@dataclass(frozen=True, slots=True, kw_only=True)
class Authentication:
    principal: Principal
    #: the sign-in session of an access token (what logout ends); None for API tokens
    session_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class _Cached:
    authentication: Authentication
    refs: frozenset[str]  # the session, token and user ids it depends on
    fresh_until: float  # monotonic
    expires_at: datetime | None  # the session's or the token's own expiry


class Authenticator:
    def __init__(
        self,
        uow_factory: Callable[[], UnitOfWork],
        access_tokens: AccessTokens | None,
        clock: Clock,
        *,
        cache_seconds: float = 5.0,
        touch_every: timedelta = timedelta(minutes=1),
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._uow_factory = uow_factory
        self._access_tokens = access_tokens
        self._clock = clock
        self._cache_seconds = cache_seconds
        self._touch_every = touch_every
        self._monotonic = monotonic
        self._cache: dict[str, _Cached] = {}

    async def principal(self, token: str) -> Principal:
        """The caller that ``token`` names; raises InvalidCredentials."""
        return (await self.authenticate(token)).principal

    async def authenticate(self, token: str) -> Authentication:
        """The caller, with the session an access token belongs to."""
        if not token:
            raise InvalidCredentials("a token is needed: Authorization: Bearer <token>")
        now = self._clock.now()
        if token.startswith((PERSONAL_TOKEN_PREFIX, SERVICE_TOKEN_PREFIX)):
            key = hash_token(token)
            return self._cached(key, now) or await self._api_token(key, now)
        if token.startswith(REFRESH_TOKEN_PREFIX):
            raise InvalidCredentials("a refresh token only gets new tokens (POST /auth/refresh)")
        if token.count(".") == 2 and self._access_tokens is not None:
            claims = self._access_tokens.verify(token, now=now)  # raises InvalidCredentials
            found = self._cached(claims.session_id, now)
            if found is not None and found.principal.id == claims.user_id:
                return found
            return await self._session(claims, now)
        raise InvalidCredentials(UNKNOWN_TOKEN)

    def forget(self, *ids: str) -> None:
        """Drop what is cached about these sessions, tokens or users."""
        gone = set(ids)
        for key in [key for key, entry in self._cache.items() if entry.refs & gone]:
            del self._cache[key]

    def _cached(self, key: str, now: datetime) -> Authentication | None:
        entry = self._cache.get(key)
        if entry is None:
            return None
        if entry.fresh_until <= self._monotonic() or (
            entry.expires_at is not None and entry.expires_at <= now
        ):
            del self._cache[key]
            return None
        return entry.authentication

    def _remember(
        self, key: str, found: Authentication, refs: set[str], expires_at: datetime | None
    ) -> Authentication:
        if self._cache_seconds > 0:
            if len(self._cache) >= MAX_CACHED:
                self._cache.clear()
            self._cache[key] = _Cached(
                authentication=found,
                refs=frozenset(refs),
                fresh_until=self._monotonic() + self._cache_seconds,
                expires_at=expires_at,
            )
        return found

    async def _session(self, claims: AccessClaims, now: datetime) -> Authentication:
        async with self._uow_factory() as uow:
            try:
                session = await uow.sessions.get(claims.session_id)
                user = await uow.users.get(session.user_id)
            except NotFound:
                raise InvalidCredentials(UNKNOWN_TOKEN) from None
        session.check_usable(now)  # revoked (logout, reuse) or past its end
        if user.id != claims.user_id or not user.active:
            raise InvalidCredentials(UNKNOWN_TOKEN)
        principal = Principal(
            kind=PrincipalKind.USER,
            id=user.id,
            name=user.username,
            role=user.role,
            token_id=session.id,
        )
        found = Authentication(principal=principal, session_id=session.id)
        return self._remember(session.id, found, {session.id, user.id}, session.expires_at)

    async def _api_token(self, token_hash: str, now: datetime) -> Authentication:
        async with self._uow_factory() as uow:
            try:
                token = await uow.api_tokens.get_by_hash(token_hash)
            except NotFound:
                raise InvalidCredentials(UNKNOWN_TOKEN) from None
            token.check_usable(now)  # raises InvalidCredentials: revoked or expired
            if token.kind == ApiTokenKind.SERVICE:
                principal = Principal(
                    kind=PrincipalKind.SERVICE,
                    id=token.id,
                    name=token.name,
                    role=Role.SERVICE,
                    scopes=token.scopes,
                    token_id=token.id,
                )
            else:
                try:
                    user = await uow.users.get(token.user_id)
                except NotFound:
                    raise InvalidCredentials(UNKNOWN_TOKEN) from None
                if not user.active:
                    raise InvalidCredentials("the token's account is deactivated")
                principal = Principal(
                    kind=PrincipalKind.USER,
                    id=user.id,
                    name=user.username,
                    role=user.role,
                    token_id=token.id,
                )
            stale = now - self._touch_every
            if token.last_used_at is None or token.last_used_at < stale:
                await uow.api_tokens.touch(token.id, now, unless_since=stale)
                await uow.commit()
        found = Authentication(principal=principal)
        refs = {token.id, token.user_id} if token.kind == ApiTokenKind.PERSONAL else {token.id}
        return self._remember(token_hash, found, refs, token.expires_at)
