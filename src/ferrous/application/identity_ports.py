"""The ports of identities: users, their sessions and API tokens, passwords, access tokens.

Kept apart from ``ports`` only to keep that module small; ``UnitOfWork.users``,
``api_tokens`` and ``sessions`` are the repositories here, and ``Dependencies`` carries the
``PasswordHasher`` and the ``AccessTokens``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from ferrous.domain.api_token import ApiToken
from ferrous.domain.session import Session
from ferrous.domain.user import User


class UserRepository(Protocol):
    async def add(self, user: User) -> None:
        """Raises Conflict for a taken id or username (two servers creating the first admin
        at once: one of them gets Conflict)."""
        ...

    async def get(self, user_id: str) -> User:
        """Raises NotFound."""
        ...

    async def get_by_username(self, username: str) -> User:
        """By the normalized (lowercase) username. Raises NotFound."""
        ...

    async def save(self, user: User) -> None:
        """Store the changed user if nobody else did since it was read: a compare-and-set
        on ``version`` (``StaleState`` otherwise); the version is then incremented."""
        ...

    async def active_admins(self, *, lock: bool = False) -> list[str]:
        """Ids of the active admins.

        ``lock`` holds them until the transaction ends (PostgreSQL ``FOR UPDATE``, SQLite's
        write gate), so that two admins demoting each other at once cannot leave nobody:
        the second waits, then sees one admin left.
        """
        ...

    async def has_any(self) -> bool:
        """Whether any user exists (the first admin is made on an empty table)."""
        ...


class ApiTokenRepository(Protocol):
    """API tokens, looked up by the hash of the secret (never the secret)."""

    async def add(self, token: ApiToken) -> None:
        """Raises Conflict for an id or hash that exists already."""
        ...

    async def get(self, token_id: str) -> ApiToken:
        """Raises NotFound."""
        ...

    async def get_by_hash(self, token_hash: str) -> ApiToken:
        """Raises NotFound."""
        ...

    async def save(self, token: ApiToken) -> None:
        """Store what its owner changes (``name``, ``revoked_at``). Raises NotFound.

        ``last_used_at`` is not written here (only ``touch`` stamps it), so a revocation
        saved from a token read earlier never turns back a later use, nor a use a revocation.
        """
        ...

    async def touch(self, token_id: str, now: datetime, *, unless_since: datetime) -> None:
        """Set ``last_used_at`` to ``now`` unless it is at or after ``unless_since``: a token
        used on every request is stamped once a minute, not written each time."""
        ...


class SessionRepository(Protocol):
    async def add(self, session: Session) -> None:
        """Raises Conflict for an id or refresh hash that exists already."""
        ...

    async def get(self, session_id: str) -> Session:
        """Raises NotFound."""
        ...

    async def save(self, session: Session) -> None:
        """A compare-and-set on ``version`` (``StaleState`` otherwise): of two refreshes
        with the same refresh token only one rotates it; the other, run again, finds its
        token rotated away and revokes the session."""
        ...

    async def revoke_all(self, user_id: str, now: datetime) -> list[str]:
        """Revoke every session of the user that is not revoked yet (a new password ends
        them); returns their ids."""
        ...


class PasswordHasher(Protocol):
    """One-way, slow, salted hashes of passwords. Hashing costs tens of milliseconds of CPU,
    so the adapter runs it off the event loop."""

    async def hash(self, password: str) -> str: ...

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """Whether ``password`` matches. With no hash (no such user, or none set) a hash is
        still computed, so the answer takes as long and leaks nothing about usernames."""
        ...

    def needs_rehash(self, password_hash: str) -> bool:
        """Whether the hash was made with weaker parameters than the current ones (it is
        replaced at the next successful sign-in)."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class AccessClaims:
    """What a verified access token says."""

    user_id: str  # sub
    session_id: str  # sid
    role: str  # the role when it was issued; the authenticator reads the current one
    token_id: str  # jti
    issued_at: datetime
    expires_at: datetime


class AccessTokens(Protocol):
    """Short-lived signed access tokens (JWT) for people signed in with a password.

    Pure CPU: not async. Every server of one installation must verify what any of them
    issued (one shared key).
    """

    def issue(
        self, *, user_id: str, role: str, session_id: str, now: datetime, ttl: timedelta
    ) -> str: ...

    def verify(self, token: str, *, now: datetime) -> AccessClaims:
        """Raises InvalidCredentials for a bad signature, another algorithm, a wrong type,
        a malformed token or one expired at ``now``."""
        ...
