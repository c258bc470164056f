"""The read side of identities on SQL: users and API tokens, never a hash.

The token listing selects named columns only, so no hash ever leaves the database here.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, or_, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from ferrous.application.identity_queries import ApiTokenView, UserView
from ferrous.domain.api_token import ApiTokenKind
from ferrous.domain.errors import NotFound
from ferrous.domain.user import normalized_username
from ferrous.infrastructure.sql.schema import api_tokens, users
from ferrous.infrastructure.sql.session import raise_storage_error

_USERS = select(*(users.c[name] for name in UserView.__dataclass_fields__))
_TOKENS = select(*(api_tokens.c[name] for name in ApiTokenView.__dataclass_fields__))


class SqlIdentityQueries:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def _rows(self, statement: Select[Any]) -> list[Any]:
        try:
            async with self._engine.connect() as conn:
                return list((await conn.execute(statement)).all())
        except SQLAlchemyError as exc:
            raise_storage_error(exc)

    async def list_users(self) -> list[UserView]:
        rows = await self._rows(_USERS.order_by(users.c.username))
        return [UserView(**row._asdict()) for row in rows]

    async def get_user(self, id_or_username: str) -> UserView:
        where = or_(
            users.c.id == id_or_username, users.c.username == normalized_username(id_or_username)
        )
        rows = await self._rows(_USERS.where(where).order_by(users.c.id != id_or_username))
        if not rows:
            raise NotFound(f"no user {id_or_username}")
        return UserView(**rows[0]._asdict())

    async def list_api_tokens(
        self, *, user_id: str | None = None, kind: ApiTokenKind | None = None
    ) -> list[ApiTokenView]:
        statement = _TOKENS
        if user_id is not None:
            statement = statement.where(api_tokens.c.user_id == user_id)
        if kind is not None:
            statement = statement.where(api_tokens.c.kind == kind.value)
        statement = statement.order_by(api_tokens.c.created_at.desc(), api_tokens.c.id.desc())
        return [
            ApiTokenView(**{**row._asdict(), "scopes": sorted(row.scopes)})
            for row in await self._rows(statement)
        ]
