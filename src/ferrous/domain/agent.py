"""The Agent aggregate: a machine that runs jobs, its labels, capacity and liveness.

An agent holds leases on the jobs it runs; when it stops heartbeating for longer than the
lease timeout it is disconnected and its jobs are lost (retried or failed by their builds).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from ferrous.domain.events import AgentDisconnected, AgentRegistered, Event
from ferrous.domain.ids import new_id


class AgentStatus(StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"


@dataclass(slots=True, kw_only=True)
class Agent:
    id: str
    name: str
    token_hash: str
    labels: frozenset[str]
    capacity: int
    platform: dict[str, Any]
    status: AgentStatus
    created_at: datetime
    last_seen_at: datetime
    embedded: bool = False
    version: int = 0
    events: list[Event] = field(default_factory=list)

    @classmethod
    def register(
        cls,
        *,
        name: str,
        token_hash: str,
        labels: frozenset[str],
        capacity: int,
        platform: dict[str, Any],
        now: datetime,
        embedded: bool = False,
    ) -> Agent:
        agent = cls(
            id=new_id(),
            name=name,
            token_hash=token_hash,
            labels=labels,
            capacity=max(1, capacity),
            platform=platform,
            status=AgentStatus.ONLINE,
            created_at=now,
            last_seen_at=now,
            embedded=embedded,
        )
        agent.events.append(AgentRegistered(agent_id=agent.id, name=name))
        return agent

    def can_run(self, tags: tuple[str, ...]) -> bool:
        """A job runs on an agent whose labels include every one of the job's tags."""
        return set(tags) <= self.labels

    def seen(self, now: datetime) -> None:
        self.last_seen_at = now
        self.status = AgentStatus.ONLINE

    def is_silent(self, now: datetime, lease_timeout: timedelta) -> bool:
        return self.status == AgentStatus.ONLINE and now - self.last_seen_at > lease_timeout

    def disconnect(self, reason: str) -> None:
        if self.status == AgentStatus.OFFLINE:
            return
        self.status = AgentStatus.OFFLINE
        self.events.append(AgentDisconnected(agent_id=self.id, reason=reason))
