"""Agent registration tokens: secrets an admin creates so that agents can join the server.

A token is shown once when it is created and only its hash is kept. An agent spends one use
of it to register and receives its own agent token; the registration token itself is never
needed again by that agent. A token is usable while it is not revoked, not expired and has
uses left (``unusable_reason``). The SQL adapter counts a use with one ``UPDATE ... WHERE``
that repeats this rule, so that concurrent registrations cannot overspend a token; its
contract tests check that both agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from ferrous.domain.errors import InvalidCredentials, InvalidValue
from ferrous.domain.ids import new_id

#: Plain tokens start with this, so that a leaked one is recognizable (secret scanners, logs).
REGISTRATION_TOKEN_PREFIX = "frt_"
MAX_DESCRIPTION = 200


class TokenState(StrEnum):
    ACTIVE = "active"
    REVOKED = "revoked"
    EXPIRED = "expired"
    USED_UP = "used_up"


def token_state(
    *,
    now: datetime,
    revoked_at: datetime | None,
    expires_at: datetime | None,
    max_uses: int | None,
    uses: int,
) -> TokenState:
    """The rule "usable now?" on plain values, so read models can show it too.

    Revocation wins over expiry, which wins over the use count: the first reason an admin
    can act on is the one shown.
    """
    if revoked_at is not None:
        return TokenState.REVOKED
    if expires_at is not None and now >= expires_at:
        return TokenState.EXPIRED
    if max_uses is not None and uses >= max_uses:
        return TokenState.USED_UP
    return TokenState.ACTIVE


def checked_description(description: str, *, now: datetime, expires_at: datetime | None) -> str:
    """The stripped description of a new token (of any kind), refusing one too long or an
    expiry already past: a token that could never be used is a mistake to say at once."""
    description = description.strip()
    if len(description) > MAX_DESCRIPTION:
        raise InvalidValue(f"a description may have at most {MAX_DESCRIPTION} characters")
    if expires_at is not None and expires_at <= now:
        raise InvalidValue(f"the expiry {expires_at.isoformat()} is not in the future")
    return description


@dataclass(slots=True, kw_only=True)
class RegistrationToken:
    id: str
    description: str
    token_hash: str
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    max_uses: int | None = None  # None: unlimited
    uses: int = 0
    last_used_at: datetime | None = None

    @classmethod
    def issue(
        cls,
        *,
        token_hash: str,
        now: datetime,
        description: str = "",
        expires_at: datetime | None = None,
        max_uses: int | None = None,
    ) -> RegistrationToken:
        """A new token; refuses one that could never be used (expired, or zero uses)."""
        if max_uses is not None and max_uses < 1:
            raise InvalidValue(f"max_uses must be at least 1, not {max_uses}")
        return cls(
            id=new_id(),
            description=checked_description(description, now=now, expires_at=expires_at),
            token_hash=token_hash,
            created_at=now,
            expires_at=expires_at,
            max_uses=max_uses,
        )

    def state(self, now: datetime) -> TokenState:
        return token_state(
            now=now,
            revoked_at=self.revoked_at,
            expires_at=self.expires_at,
            max_uses=self.max_uses,
            uses=self.uses,
        )

    def usable(self, now: datetime) -> bool:
        return self.state(now) == TokenState.ACTIVE

    def check_usable(self, now: datetime) -> None:
        """Raises InvalidCredentials saying why the token cannot register an agent now."""
        state = self.state(now)
        if state != TokenState.ACTIVE:
            reason = state.value.replace("_", " ")
            raise InvalidCredentials(f"the agent registration token is {reason}")

    def use(self, now: datetime) -> None:
        """Count one registration (the in-memory form of the repository's ``spend``)."""
        self.check_usable(now)
        self.uses += 1
        self.last_used_at = now

    def revoke(self, now: datetime) -> None:
        """Refuse every later registration; revoking again keeps the first moment."""
        if self.revoked_at is None:
            self.revoked_at = now
