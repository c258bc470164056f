"""Signing in with a password, refreshing the session, signing out.

Every refusal of a sign-in says the same thing, whether the username is unknown, the
password wrong or the account deactivated, and takes as long (a password hash is computed
even without a user): nothing tells which usernames exist. A hash made with weaker
parameters than today's is replaced at the next successful sign-in.

A refresh rotates the session's refresh token; presenting one that was rotated away revokes
the whole session (``domain.session``). The revocation is committed before the refusal is
raised, so it holds whatever the caller does next.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from ferrous.application.commands import Login, Logout, RefreshSession
from ferrous.application.dependencies import Dependencies
from ferrous.application.identity_ports import AccessTokens, PasswordHasher
from ferrous.application.ports import UnitOfWork
from ferrous.application.use_cases.register_agent import hash_token
from ferrous.domain.errors import FerrousError, InvalidCredentials, NotFound
from ferrous.domain.ids import new_id
from ferrous.domain.session import Session, refresh_token, session_of_refresh_token
from ferrous.domain.user import User, normalized_username

WRONG_PASSWORD = "wrong username or password"


@dataclass(frozen=True, slots=True, kw_only=True)
class SignedIn:
    """What a sign-in or a refresh answers; the refresh token is the only copy there is."""

    access_token: str
    refresh_token: str
    expires_in: int  # seconds the access token lasts
    user_id: str
    session_id: str


def password_hasher(deps: Dependencies) -> PasswordHasher:
    if deps.passwords is None:
        raise FerrousError("this server has no password hasher configured")
    return deps.passwords


def access_tokens(deps: Dependencies) -> AccessTokens:
    if deps.access_tokens is None:
        raise FerrousError("this server has no access token signer configured")
    return deps.access_tokens


def _signed_in(deps: Dependencies, user: User, session: Session, refresh: str) -> SignedIn:
    ttl = deps.access_token_ttl
    access = access_tokens(deps).issue(
        user_id=user.id, role=user.role.value, session_id=session.id, now=deps.clock.now(), ttl=ttl
    )
    return SignedIn(
        access_token=access,
        refresh_token=refresh,
        expires_in=int(ttl.total_seconds()),
        user_id=user.id,
        session_id=session.id,
    )


def _new_refresh_token(session_id: str) -> tuple[str, str]:
    plain = refresh_token(session_id, secrets.token_urlsafe(32))
    return plain, hash_token(plain)


async def login(cmd: Login, uow: UnitOfWork, deps: Dependencies) -> SignedIn:
    hasher = password_hasher(deps)
    access_tokens(deps)  # refuse before a session is stored that could not be used
    try:
        user: User | None = await uow.users.get_by_username(normalized_username(cmd.username))
    except NotFound:
        user = None
    stored_hash = user.password_hash if user is not None else None
    if not await hasher.verify(stored_hash, cmd.password) or user is None or not user.active:
        raise InvalidCredentials(WRONG_PASSWORD)
    now = deps.clock.now()
    assert stored_hash is not None  # verify() is False without a hash
    if hasher.needs_rehash(stored_hash):
        user.set_password_hash(await hasher.hash(cmd.password), now)
        await uow.users.save(user)
    session_id = new_id()
    plain, refresh_hash = _new_refresh_token(session_id)
    session = Session.start(
        id=session_id,
        user_id=user.id,
        refresh_hash=refresh_hash,
        now=now,
        expires_at=now + deps.session_ttl,
    )
    await uow.sessions.add(session)
    await uow.commit()
    return _signed_in(deps, user, session, plain)


async def refresh_session(cmd: RefreshSession, uow: UnitOfWork, deps: Dependencies) -> SignedIn:
    access_tokens(deps)
    session_id = session_of_refresh_token(cmd.refresh_token)
    try:
        session = await uow.sessions.get(session_id)
    except NotFound:
        raise InvalidCredentials("unknown refresh token") from None
    now = deps.clock.now()
    session.check_usable(now)
    if not session.is_current(hash_token(cmd.refresh_token)):
        session.revoke(now)
        await uow.sessions.save(session)
        await uow.commit()
        raise InvalidCredentials(
            "this refresh token was used already: the session is revoked; sign in again"
        )
    try:
        user = await uow.users.get(session.user_id)
    except NotFound:
        raise InvalidCredentials(WRONG_PASSWORD) from None
    if not user.active:
        raise InvalidCredentials("the account is deactivated")
    plain, refresh_hash = _new_refresh_token(session.id)
    session.rotate(refresh_hash, now)
    await uow.sessions.save(session)  # of two refreshes with one token, one rotates
    await uow.commit()
    return _signed_in(deps, user, session, plain)


async def logout(cmd: Logout, uow: UnitOfWork, deps: Dependencies) -> None:
    """Revoking a session again changes nothing."""
    session = await uow.sessions.get(cmd.session_id)
    if session.user_id != cmd.user_id:
        raise NotFound(f"no session {cmd.session_id} of this user")
    session.revoke(deps.clock.now())
    await uow.sessions.save(session)
    await uow.commit()
