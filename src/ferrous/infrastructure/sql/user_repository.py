"""Users on SQL, saved with a compare-and-set on ``version`` like agents.

``active_admins(lock=True)`` is how "never demote the last admin" holds under concurrency:
on PostgreSQL it selects the admins ``FOR UPDATE``, so a second demotion waits for the
first, then re-reads the rows (READ COMMITTED re-checks the WHERE on the newest version)
and sees one admin fewer; on SQLite it takes the write gate before reading.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, bindparam, insert, select, update

from ferrous.application.ports import StaleState
from ferrous.domain.access import Role
from ferrous.domain.errors import NotFound
from ferrous.domain.user import User
from ferrous.infrastructure.sql.schema import users
from ferrous.infrastructure.sql.session import SqlSession

COLUMNS = tuple(User.__dataclass_fields__)
_FIELDS = tuple(name for name in COLUMNS if name not in ("id", "version", "created_at"))

_SAVE = (
    update(users)
    .where(users.c.id == bindparam("b_id"), users.c.version == bindparam("b_version"))
    .values(**{name: bindparam(f"b_{name}") for name in _FIELDS}, version=users.c.version + 1)
)
_ADMINS = (
    select(users.c.id)
    .where(users.c.role == Role.ADMIN.value, users.c.active.is_(True))
    .order_by(users.c.id)
)


def _user(row: Row[Any]) -> User:
    values = {name: row._mapping[name] for name in COLUMNS}
    return User(**{**values, "role": Role(values["role"])})


class SqlUserRepository:
    def __init__(self, session: SqlSession) -> None:
        self._session = session

    async def add(self, user: User) -> None:
        values = {name: getattr(user, name) for name in COLUMNS}
        values["role"] = user.role.value
        await self._session.execute_write(insert(users).values(**values))

    async def get(self, user_id: str) -> User:
        return await self._one(users.c.id == user_id, f"no user {user_id}")

    async def get_by_username(self, username: str) -> User:
        return await self._one(users.c.username == username, f"no user named {username!r}")

    async def save(self, user: User) -> None:
        params = {f"b_{name}": getattr(user, name) for name in _FIELDS}
        params.update(b_id=user.id, b_version=user.version, b_role=user.role.value)
        matched = await self._session.execute_write(_SAVE, params)
        if matched != 1:
            stored = (
                await self._session.execute(select(users.c.version).where(users.c.id == user.id))
            ).scalar_one_or_none()
            if stored is None:
                raise NotFound(f"no user {user.id}")
            raise StaleState(f"user {user.id} is at version {stored}, not {user.version}")
        user.version += 1

    async def active_admins(self, *, lock: bool = False) -> list[str]:
        postgres = self._session.is_postgres
        statement = _ADMINS.with_for_update() if lock and postgres else _ADMINS
        result = await self._session.execute(statement, write=lock)
        return list(result.scalars())

    async def has_any(self) -> bool:
        found = await self._session.execute(select(users.c.id).limit(1))
        return found.first() is not None

    async def _one(self, where: Any, message: str) -> User:
        row = (await self._session.execute(select(users).where(where))).first()
        if row is None:
            raise NotFound(message)
        return _user(row)
