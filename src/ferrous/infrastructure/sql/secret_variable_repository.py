"""Secret variables on SQL: rows of sealed text, one per (owner, name).

An instance variable's ``project_id`` is NULL, which ``=`` never matches: the owner is
compared with ``IS NULL`` for it. A name taken twice (two sets racing) fails on the unique
constraint or, for instance variables, on the partial unique index; the session turns that
into ``Conflict``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Row, delete, insert, select, update

from ferrous.domain.errors import NotFound
from ferrous.domain.secret_variable import SecretVariable
from ferrous.infrastructure.sql.schema import secret_variables as t
from ferrous.infrastructure.sql.session import SqlSession

COLUMNS = tuple(SecretVariable.__dataclass_fields__)


def _owner(project_id: str | None) -> ColumnElement[bool]:
    return t.c.project_id.is_(None) if project_id is None else t.c.project_id == project_id


def _secret(row: Row[Any]) -> SecretVariable:
    return SecretVariable(**{name: row._mapping[name] for name in COLUMNS})


class SqlSecretVariableRepository:
    def __init__(self, session: SqlSession) -> None:
        self._session = session

    async def find(self, project_id: str | None, name: str) -> SecretVariable | None:
        result = await self._session.execute(select(t).where(_owner(project_id), t.c.name == name))
        row = result.first()
        return None if row is None else _secret(row)

    async def list_for(self, project_id: str | None) -> list[SecretVariable]:
        result = await self._session.execute(select(t).where(_owner(project_id)).order_by(t.c.name))
        return [_secret(row) for row in result]

    async def add(self, secret: SecretVariable) -> None:
        values = {name: getattr(secret, name) for name in COLUMNS}
        await self._session.execute_write(insert(t).values(**values))

    async def save(self, secret: SecretVariable) -> None:
        matched = await self._session.execute_write(
            update(t)
            .where(t.c.id == secret.id)
            .values(
                sealed=secret.sealed,
                protected=secret.protected,
                masked=secret.masked,
                updated_at=secret.updated_at,
            )
        )
        if matched != 1:
            raise NotFound(f"no secret variable {secret.name}")

    async def remove(self, secret: SecretVariable) -> None:
        matched = await self._session.execute_write(delete(t).where(t.c.id == secret.id))
        if matched != 1:
            raise NotFound(f"no secret variable {secret.name}")
