"""Pipeline trigger tokens on SQL: a use is stamped by one conditional UPDATE.

``use`` runs ``UPDATE ... SET last_used_at WHERE`` the token is usable rather than read,
check and write: on PostgreSQL an UPDATE waiting for a concurrent revocation re-evaluates
its WHERE on the committed row and no longer matches, so no build starts with a token
revoked meanwhile. The WHERE repeats ``domain.trigger_token.trigger_token_state``; the
repository contract tests check that both agree.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Row, and_, insert, or_, select, update

from ferrous.application.ports import StaleState
from ferrous.domain.errors import NotFound
from ferrous.domain.trigger_token import TriggerToken
from ferrous.infrastructure.sql.schema import trigger_tokens as t
from ferrous.infrastructure.sql.session import SqlSession

COLUMNS = tuple(TriggerToken.__dataclass_fields__)


class SqlTriggerTokenRepository:
    def __init__(self, session: SqlSession) -> None:
        self._session = session

    async def add(self, token: TriggerToken) -> None:
        """A taken id or hash raises Conflict (the session translates the IntegrityError)."""
        values = {name: getattr(token, name) for name in COLUMNS}
        await self._session.execute_write(insert(t).values(**values))

    async def get(self, token_id: str) -> TriggerToken:
        found = await self._one(t.c.id == token_id)
        if found is None:
            raise NotFound(f"no trigger token {token_id}")
        return found

    async def save(self, token: TriggerToken) -> None:
        matched = await self._session.execute_write(
            update(t)
            .where(t.c.id == token.id)
            .values(description=token.description, revoked_at=token.revoked_at)
        )
        if matched != 1:
            raise NotFound(f"no trigger token {token.id}")

    async def use(self, token_hash: str, now: datetime) -> TriggerToken:
        usable = and_(t.c.revoked_at.is_(None), or_(t.c.expires_at.is_(None), t.c.expires_at > now))
        matched = await self._session.execute_write(
            update(t).where(t.c.token_hash == token_hash, usable).values(last_used_at=now)
        )
        found = await self._one(t.c.token_hash == token_hash)
        if found is None:
            raise NotFound("no trigger token has this hash")
        if matched != 1:
            found.check_usable(now)  # raises InvalidCredentials with the reason
            # the row changed between the UPDATE and the SELECT (READ COMMITTED): again
            raise StaleState(f"trigger token {found.id} changed meanwhile")
        return found

    async def _one(self, where: Any) -> TriggerToken | None:
        row: Row[Any] | None = (await self._session.execute(select(t).where(where))).first()
        return (
            None if row is None else TriggerToken(**{name: row._mapping[name] for name in COLUMNS})
        )
