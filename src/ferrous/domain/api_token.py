"""API tokens: long-lived secrets for scripts, the CLI and other services.

A personal token (``fpt_``) acts as the person who made it, with their role as it is at
each call: demoting or deactivating the person changes what their tokens can do at once.
A service token (``fst_``) is made by an admin for a system, not a person: it may do only
its ``scopes`` (a subset of ``access.SERVICE_SCOPES``) and does not depend on the admin who
made it staying active, so that a deployment bot outlives its creator's account; admins see
and revoke every service token. Like the other tokens, the secret is shown once and only its
hash is kept; ``prefix`` (its first characters) lets a person tell their tokens apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from ferrous.domain.access import SERVICE_SCOPES
from ferrous.domain.errors import InvalidCredentials, InvalidValue
from ferrous.domain.ids import new_id
from ferrous.domain.registration_token import TokenState, token_state

PERSONAL_TOKEN_PREFIX = "fpt_"
SERVICE_TOKEN_PREFIX = "fst_"
#: how much of the plain token is kept to be shown: the kind's prefix and 8 more characters
SHOWN_PREFIX_LENGTH = 12
MAX_NAME = 100


class ApiTokenKind(StrEnum):
    PERSONAL = "personal"
    SERVICE = "service"


TOKEN_PREFIXES = {
    ApiTokenKind.PERSONAL: PERSONAL_TOKEN_PREFIX,
    ApiTokenKind.SERVICE: SERVICE_TOKEN_PREFIX,
}


def api_token_state(
    *, now: datetime, revoked_at: datetime | None, expires_at: datetime | None
) -> TokenState:
    """Active, revoked or expired, on plain values for the read models."""
    return token_state(now=now, revoked_at=revoked_at, expires_at=expires_at, max_uses=None, uses=0)


def checked_scopes(kind: ApiTokenKind, scopes: frozenset[str]) -> frozenset[str]:
    if kind == ApiTokenKind.PERSONAL:
        if scopes:
            raise InvalidValue(
                "a personal token has its person's role; only service tokens have scopes"
            )
        return frozenset()
    if not scopes:
        raise InvalidValue("a service token needs at least one scope")
    unknown = scopes - SERVICE_SCOPES
    if unknown:
        raise InvalidValue(f"not scopes a service token may have: {', '.join(sorted(unknown))}")
    return frozenset(scopes)


@dataclass(slots=True, kw_only=True)
class ApiToken:
    id: str
    user_id: str  # the owner of a personal token; the admin who made a service token
    name: str
    kind: ApiTokenKind
    scopes: frozenset[str]
    token_hash: str
    prefix: str
    created_at: datetime
    expires_at: datetime | None = None
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None

    @classmethod
    def issue(
        cls,
        *,
        user_id: str,
        name: str,
        kind: ApiTokenKind,
        plain: str,
        token_hash: str,
        now: datetime,
        scopes: frozenset[str] = frozenset(),
        expires_at: datetime | None = None,
    ) -> ApiToken:
        """A new token for the secret ``plain`` (only its prefix and ``token_hash`` are kept)."""
        name = name.strip()
        if not name or len(name) > MAX_NAME:
            raise InvalidValue(f"a token's name is 1 to {MAX_NAME} characters")
        if not plain.startswith(TOKEN_PREFIXES[kind]):
            raise InvalidValue(f"a {kind.value} token starts with {TOKEN_PREFIXES[kind]}")
        if expires_at is not None and expires_at <= now:
            raise InvalidValue(f"the expiry {expires_at.isoformat()} is not in the future")
        return cls(
            id=new_id(),
            user_id=user_id,
            name=name,
            kind=kind,
            scopes=checked_scopes(kind, scopes),
            token_hash=token_hash,
            prefix=plain[:SHOWN_PREFIX_LENGTH],
            created_at=now,
            expires_at=expires_at,
        )

    def state(self, now: datetime) -> TokenState:
        return api_token_state(now=now, revoked_at=self.revoked_at, expires_at=self.expires_at)

    def check_usable(self, now: datetime) -> None:
        """Raises InvalidCredentials saying why the token cannot be used now."""
        state = self.state(now)
        if state != TokenState.ACTIVE:
            raise InvalidCredentials(f"the API token is {state.value}")

    def revoke(self, now: datetime) -> None:
        """Refuse every later call; revoking again keeps the first moment."""
        if self.revoked_at is None:
            self.revoked_at = now
