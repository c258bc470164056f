"""Agents, saved with optimistic concurrency like builds (heartbeats race with claims)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Row, bindparam, insert, select, update

from ferrous.application.ports import StaleState
from ferrous.domain.agent import Agent, AgentStatus
from ferrous.domain.errors import NotFound
from ferrous.infrastructure.sql.schema import agents
from ferrous.infrastructure.sql.session import SqlSession

Track = Callable[[Any], None]

_SELECT = select(agents)
_SAVE = (
    update(agents)
    .where(agents.c.id == bindparam("b_id"), agents.c.version == bindparam("b_version"))
    .values(
        name=bindparam("b_name"),
        token_hash=bindparam("b_token_hash"),
        labels=bindparam("b_labels"),
        platform=bindparam("b_platform"),
        status=bindparam("b_status"),
        capacity=bindparam("b_capacity"),
        embedded=bindparam("b_embedded"),
        last_seen_at=bindparam("b_last_seen_at"),
        version=agents.c.version + 1,
    )
)

_TOUCH = (
    update(agents)
    .where(agents.c.id == bindparam("b_id"), agents.c.last_seen_at < bindparam("b_now"))
    .values(last_seen_at=bindparam("b_now"))
)


def _agent(row: Row[Any]) -> Agent:
    return Agent(
        id=row.id,
        name=row.name,
        token_hash=row.token_hash,
        labels=frozenset(row.labels),
        capacity=row.capacity,
        platform=row.platform,
        status=AgentStatus(row.status),
        created_at=row.created_at,
        last_seen_at=row.last_seen_at,
        embedded=row.embedded,
        version=row.version,
    )


class SqlAgentRepository:
    def __init__(self, session: SqlSession, track: Track) -> None:
        self._session = session
        self._track = track

    async def add(self, agent: Agent) -> None:
        await self._session.execute_write(
            insert(agents).values(
                id=agent.id,
                name=agent.name,
                token_hash=agent.token_hash,
                labels=sorted(agent.labels),
                platform=agent.platform,
                status=agent.status.value,
                capacity=agent.capacity,
                embedded=agent.embedded,
                version=agent.version,
                created_at=agent.created_at,
                last_seen_at=agent.last_seen_at,
            )
        )
        self._track(agent)

    async def get(self, agent_id: str) -> Agent:
        return await self._one(agents.c.id == agent_id, f"no agent {agent_id}")

    async def get_by_token_hash(self, token_hash: str) -> Agent:
        return await self._one(agents.c.token_hash == token_hash, "no agent has this token")

    async def _one(self, where: Any, message: str) -> Agent:
        row = (await self._session.execute(_SELECT.where(where))).first()
        if row is None:
            raise NotFound(message)
        return _agent(row)

    async def save(self, agent: Agent) -> None:
        matched = await self._session.execute_write(
            _SAVE,
            {
                "b_id": agent.id,
                "b_version": agent.version,
                "b_name": agent.name,
                "b_token_hash": agent.token_hash,
                "b_labels": sorted(agent.labels),
                "b_platform": agent.platform,
                "b_status": agent.status.value,
                "b_capacity": agent.capacity,
                "b_embedded": agent.embedded,
                "b_last_seen_at": agent.last_seen_at,
            },
        )
        if matched != 1:
            stored = (
                await self._session.execute(select(agents.c.version).where(agents.c.id == agent.id))
            ).scalar_one_or_none()
            if stored is None:
                raise NotFound(f"no agent {agent.id}")
            raise StaleState(f"agent {agent.id} is at version {stored}, not {agent.version}")
        agent.version += 1
        self._track(agent)

    async def touch(self, agent_id: str, now: datetime) -> None:
        await self._session.execute_write(_TOUCH, {"b_id": agent_id, "b_now": now})

    async def silent_since(self, cutoff: datetime) -> list[Agent]:
        result = await self._session.execute(
            _SELECT.where(
                agents.c.status == AgentStatus.ONLINE.value, agents.c.last_seen_at < cutoff
            ).order_by(agents.c.last_seen_at, agents.c.id)
        )
        return [_agent(row) for row in result]
