"""Agent registration tokens on SQL: a use is counted by one conditional UPDATE.

``spend`` does not read, check and write back (two registrations could both read the last
use); it runs ``UPDATE ... SET uses = uses + 1 WHERE`` the token is usable. On PostgreSQL a
second UPDATE of the same row waits for the first transaction and then re-evaluates its
WHERE on the committed row, so it no longer matches once the last use is taken; on SQLite
writers are serialized anyway. The WHERE repeats ``domain.registration_token.token_state``;
the repository contract tests check that both agree.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Row, and_, insert, or_, select, update

from ferrous.application.ports import StaleState
from ferrous.domain.errors import NotFound
from ferrous.domain.registration_token import RegistrationToken
from ferrous.infrastructure.sql.schema import registration_tokens as t
from ferrous.infrastructure.sql.session import SqlSession


def usable_at(now: datetime) -> Any:
    """The SQL form of "state is ACTIVE at ``now``"."""
    return and_(
        t.c.revoked_at.is_(None),
        or_(t.c.expires_at.is_(None), t.c.expires_at > now),
        or_(t.c.max_uses.is_(None), t.c.uses < t.c.max_uses),
    )


def _token(row: Row[Any]) -> RegistrationToken:
    return RegistrationToken(
        id=row.id,
        description=row.description,
        token_hash=row.token_hash,
        created_at=row.created_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        max_uses=row.max_uses,
        uses=row.uses,
        last_used_at=row.last_used_at,
    )


class SqlRegistrationTokenRepository:
    def __init__(self, session: SqlSession) -> None:
        self._session = session

    async def add(self, token: RegistrationToken) -> None:
        await self._session.execute_write(
            insert(t).values(
                id=token.id,
                description=token.description,
                token_hash=token.token_hash,
                created_at=token.created_at,
                expires_at=token.expires_at,
                revoked_at=token.revoked_at,
                max_uses=token.max_uses,
                uses=token.uses,
                last_used_at=token.last_used_at,
            )
        )

    async def get(self, token_id: str) -> RegistrationToken:
        found = await self._one(t.c.id == token_id)
        if found is None:
            raise NotFound(f"no agent registration token {token_id}")
        return found

    async def save(self, token: RegistrationToken) -> None:
        matched = await self._session.execute_write(
            update(t)
            .where(t.c.id == token.id)
            .values(description=token.description, revoked_at=token.revoked_at)
        )
        if matched != 1:
            raise NotFound(f"no agent registration token {token.id}")

    async def spend(self, token_hash: str, now: datetime) -> RegistrationToken:
        matched = await self._session.execute_write(
            update(t)
            .where(t.c.token_hash == token_hash, usable_at(now))
            .values(uses=t.c.uses + 1, last_used_at=now)
        )
        found = await self._one(t.c.token_hash == token_hash)
        if found is None:
            raise NotFound("no agent registration token has this hash")
        if matched != 1:
            found.check_usable(now)  # raises InvalidCredentials with the reason
            # the row changed between the UPDATE and the SELECT (READ COMMITTED): again
            raise StaleState(f"agent registration token {found.id} changed meanwhile")
        return found

    async def _one(self, where: Any) -> RegistrationToken | None:
        row = (await self._session.execute(select(t).where(where))).first()
        return None if row is None else _token(row)
