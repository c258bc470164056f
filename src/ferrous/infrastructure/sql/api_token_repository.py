"""API tokens on SQL: found by the hash of the secret, stamped when used.

``save`` writes what a person changes (name, revocation) and ``touch`` only
``last_used_at``, with a WHERE that skips a token stamped less than a minute ago: the two
never overwrite each other, and a token used on every request costs one write a minute.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Row, insert, or_, select, update

from ferrous.domain.api_token import ApiToken, ApiTokenKind
from ferrous.domain.errors import NotFound
from ferrous.infrastructure.sql.schema import api_tokens as t
from ferrous.infrastructure.sql.session import SqlSession

COLUMNS = tuple(ApiToken.__dataclass_fields__)


def api_token(row: Row[Any]) -> ApiToken:
    values = {name: row._mapping[name] for name in COLUMNS}
    values.update(kind=ApiTokenKind(values["kind"]), scopes=frozenset(values["scopes"]))
    return ApiToken(**values)


class SqlApiTokenRepository:
    def __init__(self, session: SqlSession) -> None:
        self._session = session

    async def add(self, token: ApiToken) -> None:
        """A taken id or hash raises Conflict (the session translates the IntegrityError)."""
        values = {name: getattr(token, name) for name in COLUMNS}
        values.update(kind=token.kind.value, scopes=sorted(token.scopes))
        await self._session.execute_write(insert(t).values(**values))

    async def get(self, token_id: str) -> ApiToken:
        return await self._one(t.c.id == token_id, f"no API token {token_id}")

    async def get_by_hash(self, token_hash: str) -> ApiToken:
        return await self._one(t.c.token_hash == token_hash, "no API token has this hash")

    async def save(self, token: ApiToken) -> None:
        matched = await self._session.execute_write(
            update(t).where(t.c.id == token.id).values(name=token.name, revoked_at=token.revoked_at)
        )
        if matched != 1:
            raise NotFound(f"no API token {token.id}")

    async def touch(self, token_id: str, now: datetime, *, unless_since: datetime) -> None:
        await self._session.execute_write(
            update(t)
            .where(
                t.c.id == token_id,
                or_(t.c.last_used_at.is_(None), t.c.last_used_at < unless_since),
            )
            .values(last_used_at=now)
        )

    async def _one(self, where: Any, message: str) -> ApiToken:
        row = (await self._session.execute(select(t).where(where))).first()
        if row is None:
            raise NotFound(message)
        return api_token(row)
