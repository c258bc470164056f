"""The read side of identities: users and API tokens as plain DTOs, never their hashes.

Kept apart from ``queries`` as ``identity_ports`` is from ``ports``. The SQL adapter is
``SqlIdentityQueries``, the in-memory one ``InMemoryIdentityQueries``; both list newest
first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from ferrous.domain.api_token import ApiToken, ApiTokenKind
from ferrous.domain.user import User


@dataclass(frozen=True, slots=True, kw_only=True)
class UserView:
    id: str
    username: str
    email: str | None
    role: str
    active: bool
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, user: User) -> UserView:
        return cls(
            id=user.id,
            username=user.username,
            email=user.email,
            role=user.role.value,
            active=user.active,
            created_at=user.created_at,
            updated_at=user.updated_at,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiTokenView:
    id: str
    user_id: str
    name: str
    kind: str
    scopes: list[str]  # sorted
    prefix: str  # the first characters of the token, to tell tokens apart
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, token: ApiToken) -> ApiTokenView:
        return cls(
            id=token.id,
            user_id=token.user_id,
            name=token.name,
            kind=token.kind.value,
            scopes=sorted(token.scopes),
            prefix=token.prefix,
            created_at=token.created_at,
            expires_at=token.expires_at,
            last_used_at=token.last_used_at,
            revoked_at=token.revoked_at,
        )


class IdentityQueries(Protocol):
    async def list_users(self) -> list[UserView]:
        """Every user, by username."""
        ...

    async def get_user(self, id_or_username: str) -> UserView:
        """Raises NotFound."""
        ...

    async def list_api_tokens(
        self, *, user_id: str | None = None, kind: ApiTokenKind | None = None
    ) -> list[ApiTokenView]:
        """Tokens of one user and/or one kind (None: any), newest first; revoked and
        expired ones too."""
        ...
