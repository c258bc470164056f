"""Sign-in sessions on SQL, saved with a compare-and-set on ``version``.

Two refreshes racing with one refresh token both read the session, but only the first
``UPDATE ... WHERE version = :read`` matches; the second gets ``StaleState``, runs again,
finds its token rotated away and revokes the session, as the rotation rule wants.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Row, bindparam, insert, select, update

from ferrous.application.ports import StaleState
from ferrous.domain.errors import NotFound
from ferrous.domain.session import Session
from ferrous.infrastructure.sql.schema import sessions as s
from ferrous.infrastructure.sql.session import SqlSession

COLUMNS = tuple(Session.__dataclass_fields__)

_SAVE = (
    update(s)
    .where(s.c.id == bindparam("b_id"), s.c.version == bindparam("b_version"))
    .values(
        refresh_hash=bindparam("b_refresh_hash"),
        rotated_at=bindparam("b_rotated_at"),
        revoked_at=bindparam("b_revoked_at"),
        version=s.c.version + 1,
    )
)


def _session(row: Row[Any]) -> Session:
    return Session(**{name: row._mapping[name] for name in COLUMNS})


class SqlSessionRepository:
    def __init__(self, session: SqlSession) -> None:
        self._session = session

    async def add(self, session: Session) -> None:
        values = {name: getattr(session, name) for name in COLUMNS}
        await self._session.execute_write(insert(s).values(**values))

    async def get(self, session_id: str) -> Session:
        row = (await self._session.execute(select(s).where(s.c.id == session_id))).first()
        if row is None:
            raise NotFound(f"no session {session_id}")
        return _session(row)

    async def save(self, session: Session) -> None:
        matched = await self._session.execute_write(
            _SAVE,
            {
                "b_id": session.id,
                "b_version": session.version,
                "b_refresh_hash": session.refresh_hash,
                "b_rotated_at": session.rotated_at,
                "b_revoked_at": session.revoked_at,
            },
        )
        if matched != 1:
            stored = (
                await self._session.execute(select(s.c.version).where(s.c.id == session.id))
            ).scalar_one_or_none()
            if stored is None:
                raise NotFound(f"no session {session.id}")
            raise StaleState(f"session {session.id} is at version {stored}, not {session.version}")
        session.version += 1

    async def revoke_all(self, user_id: str, now: datetime) -> list[str]:
        statement = (
            update(s)
            .where(s.c.user_id == user_id, s.c.revoked_at.is_(None))
            .values(revoked_at=now, version=s.c.version + 1)
            .returning(s.c.id)
        )
        return list((await self._session.execute(statement, write=True)).scalars())
