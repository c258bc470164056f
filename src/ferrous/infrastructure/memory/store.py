"""The committed state of the in-memory adapter, shared by its units of work and queries."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from ferrous.domain.agent import Agent
from ferrous.domain.api_token import ApiToken
from ferrous.domain.build import Build
from ferrous.domain.errors import Conflict
from ferrous.domain.project import Pipeline, Project
from ferrous.domain.registration_token import RegistrationToken
from ferrous.domain.schedule import Schedule
from ferrous.domain.secret_variable import SecretVariable
from ferrous.domain.session import Session
from ferrous.domain.trigger_token import TriggerToken
from ferrous.domain.user import User
from ferrous.domain.webhook_delivery import DeliveryRecord
from ferrous.infrastructure.sql.outbox import OutboxMessage

if TYPE_CHECKING:
    from ferrous.infrastructure.memory.status_reports import StoredReport

A = TypeVar("A", Project, Pipeline, Build, Agent)


def detached(aggregate: A) -> A:
    """A deep copy without the recorded events: what a database row would give back."""
    events = aggregate.events
    aggregate.events = []
    try:
        return copy.deepcopy(aggregate)
    finally:
        aggregate.events = events


def append_bytes(log: bytes, job_id: str, offset: int, data: bytes) -> bytes:
    """``log`` with ``data`` written at ``offset``: the LogStore contract, on bytes."""
    size = len(log)
    if offset < 0:
        raise Conflict(f"log offset {offset} is negative")
    if offset > size:
        raise Conflict(
            f"log of job {job_id} is {size} bytes long; a chunk at {offset} leaves a gap"
        )
    overlap = log[offset : offset + len(data)]
    if overlap != data[: len(overlap)]:
        raise Conflict(f"log of job {job_id} ({size} bytes) holds different bytes at {offset}")
    return log + data[len(overlap) :]


@dataclass(eq=False)
class InMemoryStore:
    """What is committed. Units of work stage their changes and apply them on commit.

    ``locked_jobs`` stands for PostgreSQL's row locks taken by ``claimable``: jobs claimed by
    an open unit of work are skipped by the others, like ``FOR UPDATE SKIP LOCKED``.
    """

    projects: dict[str, Project] = field(default_factory=dict)
    pipelines: dict[str, Pipeline] = field(default_factory=dict)
    next_numbers: dict[str, int] = field(default_factory=dict)
    builds: dict[str, Build] = field(default_factory=dict)
    agents: dict[str, Agent] = field(default_factory=dict)
    registration_tokens: dict[str, RegistrationToken] = field(default_factory=dict)
    trigger_tokens: dict[str, TriggerToken] = field(default_factory=dict)
    schedules: dict[str, Schedule] = field(default_factory=dict)
    #: by (project id, forge, delivery id)
    webhook_deliveries: dict[tuple[str, str, str], DeliveryRecord] = field(default_factory=dict)
    secret_variables: dict[str, SecretVariable] = field(default_factory=dict)  # by id
    users: dict[str, User] = field(default_factory=dict)  # by id
    api_tokens: dict[str, ApiToken] = field(default_factory=dict)  # by id
    sessions: dict[str, Session] = field(default_factory=dict)  # by id
    logs: dict[str, bytes] = field(default_factory=dict)
    outbox: list[OutboxMessage] = field(default_factory=list)
    status_reports: list[StoredReport] = field(default_factory=list)  # oldest first
    published: dict[int, datetime] = field(default_factory=dict)
    locked_jobs: dict[str, object] = field(default_factory=dict)

    def fetch_unpublished(self, limit: int = 100) -> list[OutboxMessage]:
        """Like ``sql.outbox.fetch_unpublished``: the oldest unpublished events, in order."""
        return [m for m in self.outbox if m.id not in self.published][:limit]

    def mark_published(self, ids: list[int], now: datetime | None = None) -> None:
        stamp = now or datetime.now(UTC)
        for message_id in ids:
            self.published.setdefault(message_id, stamp)

    def add_events(self, rows: list[tuple[str, dict[str, Any]]], now: datetime) -> None:
        next_id = self.outbox[-1].id + 1 if self.outbox else 1
        for i, (name, payload) in enumerate(rows):
            self.outbox.append(
                OutboxMessage(id=next_id + i, name=name, payload=payload, created_at=now)
            )
