"""A login session: the family of refresh tokens one password sign-in started.

Signing in gives a short-lived access token (a JWT naming this session) and a refresh token
(``frf_<session id>.<secret>``), kept hashed. Each refresh rotates the refresh token: the
old one stops working and a new one is returned. Presenting a refresh token that was already
rotated away means two parties hold the family (one of them stole it), and nobody can tell
which is the rightful one, so the whole session is revoked: its access tokens stop working
too, and the person signs in again (OAuth 2.0 Security BCP, refresh token rotation).

The session id inside the refresh token lets a reused token find its family without keeping
every old hash. Knowing an id alone gives nothing but the power to end that session, which
whoever holds its access token has anyway (logout).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime

from ferrous.domain.errors import InvalidCredentials
from ferrous.domain.registration_token import TokenState, token_state

REFRESH_TOKEN_PREFIX = "frf_"
_SEPARATOR = "."


def refresh_token(session_id: str, secret: str) -> str:
    """The plain refresh token of ``session_id`` with a fresh random ``secret``."""
    return f"{REFRESH_TOKEN_PREFIX}{session_id}{_SEPARATOR}{secret}"


def session_of_refresh_token(token: str) -> str:
    """The session id a refresh token names; InvalidCredentials for anything else."""
    body = token.removeprefix(REFRESH_TOKEN_PREFIX)
    session_id, separator, secret = body.partition(_SEPARATOR)
    if body == token or not separator or not session_id or not secret or len(session_id) > 36:
        raise InvalidCredentials("not a refresh token")
    return session_id


@dataclass(slots=True, kw_only=True)
class Session:
    id: str
    user_id: str
    refresh_hash: str  # of the current refresh token; earlier ones are refused
    created_at: datetime
    expires_at: datetime  # absolute: refreshing does not extend it
    rotated_at: datetime | None = None
    revoked_at: datetime | None = None
    version: int = 0

    @classmethod
    def start(
        cls, *, id: str, user_id: str, refresh_hash: str, now: datetime, expires_at: datetime
    ) -> Session:
        """``id`` is chosen first, because the refresh token (and so its hash) names it."""
        return cls(
            id=id,
            user_id=user_id,
            refresh_hash=refresh_hash,
            created_at=now,
            expires_at=expires_at,
        )

    def state(self, now: datetime) -> TokenState:
        return token_state(
            now=now, revoked_at=self.revoked_at, expires_at=self.expires_at, max_uses=None, uses=0
        )

    def check_usable(self, now: datetime) -> None:
        state = self.state(now)
        if state != TokenState.ACTIVE:
            raise InvalidCredentials(f"the session is {state.value}; sign in again")

    def is_current(self, refresh_hash: str) -> bool:
        """Whether a presented refresh token is the current one (False: rotated away, or
        forged); compared in constant time."""
        return hmac.compare_digest(self.refresh_hash, refresh_hash)

    def rotate(self, refresh_hash: str, now: datetime) -> None:
        """The next refresh token of the family; the current one stops working."""
        self.check_usable(now)
        self.refresh_hash = refresh_hash
        self.rotated_at = now

    def revoke(self, now: datetime) -> None:
        """End the session (logout, or a reused refresh token); the first moment is kept."""
        if self.revoked_at is None:
            self.revoked_at = now
