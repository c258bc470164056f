"""The read side of identities over an ``InMemoryStore``: ``SqlIdentityQueries``' DTOs
and order."""

from __future__ import annotations

from ferrous.application.identity_queries import ApiTokenView, UserView
from ferrous.domain.api_token import ApiTokenKind
from ferrous.domain.errors import NotFound
from ferrous.domain.user import normalized_username
from ferrous.infrastructure.memory.store import InMemoryStore


class InMemoryIdentityQueries:
    def __init__(self, store: InMemoryStore) -> None:
        self._store = store

    async def list_users(self) -> list[UserView]:
        users = sorted(self._store.users.values(), key=lambda user: user.username)
        return [UserView.of(user) for user in users]

    async def get_user(self, id_or_username: str) -> UserView:
        user = self._store.users.get(id_or_username)
        if user is None:
            name = normalized_username(id_or_username)
            user = next((u for u in self._store.users.values() if u.username == name), None)
        if user is None:
            raise NotFound(f"no user {id_or_username}")
        return UserView.of(user)

    async def list_api_tokens(
        self, *, user_id: str | None = None, kind: ApiTokenKind | None = None
    ) -> list[ApiTokenView]:
        tokens = [
            token
            for token in self._store.api_tokens.values()
            if (user_id is None or token.user_id == user_id)
            and (kind is None or token.kind == kind)
        ]
        tokens.sort(key=lambda token: (token.created_at, token.id), reverse=True)
        return [ApiTokenView.of(token) for token in tokens]
