"""The in-memory unit of work: staged changes, applied atomically on commit.

Semantics follow the SQL adapter (the same contract tests run on both): reads see what is
committed plus this unit of work's own changes; ``save`` refuses a stale version at once and
``commit`` checks again, so of two units of work that saved the same aggregate only the first
to commit succeeds; claimed jobs stay hidden from other units of work until this one ends;
log appends are idempotent and checked again on commit. Two differences, both harmless to
callers: a conflicting save raises at ``commit`` rather than blocking like a PostgreSQL row
lock, and ``allocate_number`` takes its number at once (a rolled-back build leaves a gap).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from types import TracebackType
from typing import Any, Self

from ferrous.application.ports import StaleState
from ferrous.domain.agent import Agent
from ferrous.domain.build import Build
from ferrous.domain.errors import Conflict
from ferrous.domain.events import BuildCompleted, Event
from ferrous.domain.project import Pipeline, Project
from ferrous.infrastructure.memory.api_tokens import InMemoryApiTokenRepository
from ferrous.infrastructure.memory.notifications import (
    InMemoryNotificationRepository,
    queue_build_notifications,
)
from ferrous.infrastructure.memory.registration_tokens import (
    InMemoryRegistrationTokenRepository,
)
from ferrous.infrastructure.memory.repositories import (
    InMemoryAgentRepository,
    InMemoryBuildRepository,
    InMemoryLogStore,
    InMemoryPipelineRepository,
    InMemoryProjectRepository,
)
from ferrous.infrastructure.memory.schedules import InMemoryScheduleRepository
from ferrous.infrastructure.memory.secret_variables import InMemorySecretVariableRepository
from ferrous.infrastructure.memory.status_reports import (
    InMemoryStatusReportRepository,
    queue_build_reports,
)
from ferrous.infrastructure.memory.store import InMemoryStore, append_bytes
from ferrous.infrastructure.memory.trigger_tokens import InMemoryTriggerTokenRepository
from ferrous.infrastructure.memory.users import InMemorySessionRepository, InMemoryUserRepository
from ferrous.infrastructure.memory.webhook_deliveries import InMemoryWebhookDeliveryRepository
from ferrous.infrastructure.sql.outbox import event_name
from ferrous.infrastructure.sql.types import json_dumps


@dataclass(eq=False)
class Staged:
    """One unit of work's changes, not yet visible to others."""

    store: InMemoryStore
    projects: dict[str, Project] = field(default_factory=dict)
    pipelines: dict[str, Pipeline] = field(default_factory=dict)
    builds: dict[str, Build] = field(default_factory=dict)
    agents: dict[str, Agent] = field(default_factory=dict)
    #: the committed version each staged aggregate was based on (None: added here)
    base_versions: dict[tuple[str, str], int | None] = field(default_factory=dict)
    logs: dict[str, list[tuple[int, bytes]]] = field(default_factory=dict)
    touches: dict[str, datetime] = field(default_factory=dict)  # agent id -> last seen
    tracked: dict[int, Any] = field(default_factory=dict)

    def track(self, aggregate: Any) -> None:
        self.tracked[id(aggregate)] = aggregate

    def build_ids(self) -> set[str]:
        return set(self.store.builds) | set(self.builds)

    def build(self, build_id: str) -> Build | None:
        return self.builds.get(build_id) or self.store.builds.get(build_id)

    def log(self, job_id: str) -> bytes:
        log = self.store.logs.get(job_id, b"")
        for offset, data in self.logs.get(job_id, ()):
            log = append_bytes(log, job_id, offset, data)
        return log


class InMemoryUnitOfWork:
    """``async with InMemoryUnitOfWork(store) as uow: ...; await uow.commit()``."""

    projects: InMemoryProjectRepository
    pipelines: InMemoryPipelineRepository
    builds: InMemoryBuildRepository
    agents: InMemoryAgentRepository
    registration_tokens: InMemoryRegistrationTokenRepository
    trigger_tokens: InMemoryTriggerTokenRepository
    schedules: InMemoryScheduleRepository
    webhook_deliveries: InMemoryWebhookDeliveryRepository
    secret_variables: InMemorySecretVariableRepository
    status_reports: InMemoryStatusReportRepository
    notifications: InMemoryNotificationRepository
    users: InMemoryUserRepository
    api_tokens: InMemoryApiTokenRepository
    sessions: InMemorySessionRepository
    logs: InMemoryLogStore

    def __init__(self, store: InMemoryStore) -> None:
        self.store = store
        self._committed: list[Event] = []

    async def __aenter__(self) -> Self:
        self._committed = []
        self._begin()
        return self

    def _begin(self) -> None:
        self._staged = staged = Staged(self.store)
        self.projects = InMemoryProjectRepository(staged)
        self.pipelines = InMemoryPipelineRepository(staged)
        self.builds = InMemoryBuildRepository(staged, owner=self)
        self.agents = InMemoryAgentRepository(staged)
        self.registration_tokens = InMemoryRegistrationTokenRepository(self.store)
        self.trigger_tokens = InMemoryTriggerTokenRepository(self.store)
        self.schedules = InMemoryScheduleRepository(self.store, staged.track)
        self.webhook_deliveries = InMemoryWebhookDeliveryRepository(self.store)
        self.secret_variables = InMemorySecretVariableRepository(self.store)
        self.status_reports = InMemoryStatusReportRepository(self.store)
        self.notifications = InMemoryNotificationRepository(self.store)
        self.users = InMemoryUserRepository(self.store)
        self.api_tokens = InMemoryApiTokenRepository(self.store)
        self.sessions = InMemorySessionRepository(self.store)
        self.logs = InMemoryLogStore(staged)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._release_claims()
        self._begin()  # what was not committed is gone

    def _release_claims(self) -> None:
        locked = self.store.locked_jobs
        for job_id in [job_id for job_id, owner in locked.items() if owner is self]:
            del locked[job_id]

    async def commit(self) -> None:
        staged, store = self._staged, self.store
        self._check(staged)
        self.registration_tokens.check()
        self.trigger_tokens.check()
        self.schedules.check()
        self.webhook_deliveries.check()
        for identities in (self.users, self.api_tokens, self.sessions):
            identities.check()
        self.secret_variables.check()
        logs = {job_id: staged.log(job_id) for job_id in staged.logs}  # raises on divergence
        events = [event for aggregate in staged.tracked.values() for event in aggregate.events]
        # all checks passed: apply everything at once (no await from here on)
        store.projects.update(staged.projects)
        store.pipelines.update(staged.pipelines)
        store.builds.update(staged.builds)
        store.agents.update(staged.agents)
        for agent_id, seen in staged.touches.items():
            agent = store.agents.get(agent_id)
            if agent is not None and agent.last_seen_at < seen:
                agent.last_seen_at = seen  # stored agents are copied on every read
        self.registration_tokens.apply()
        self.trigger_tokens.apply()
        self.schedules.apply()
        self.webhook_deliveries.apply()
        self.secret_variables.apply()
        store.logs.update(logs)
        now = datetime.now(UTC)
        self.status_reports.apply()
        self.notifications.apply()
        for identities in (self.users, self.api_tokens, self.sessions):
            identities.apply()
        changed = [a for a in staged.tracked.values() if isinstance(a, Build)]
        queue_build_reports(store, changed, now)  # when the status changed, as SQL does
        done = {e.build_id for e in events if isinstance(e, BuildCompleted)}
        queue_build_notifications(store, [b for b in changed if b.id in done], now)
        store.add_events(
            [(event_name(e), json.loads(json_dumps(e.to_json()))) for e in events], now
        )
        for aggregate in staged.tracked.values():
            aggregate.events.clear()
        self._committed.extend(events)
        self._release_claims()
        self._begin()

    def _check(self, staged: Staged) -> None:
        store = self.store
        committed: dict[str, dict[str, Any]] = {
            "project": store.projects,
            "pipeline": store.pipelines,
            "build": store.builds,
            "agent": store.agents,
        }
        for (kind, aggregate_id), base in staged.base_versions.items():
            current = committed[kind].get(aggregate_id)
            if base is None and current is not None:
                raise Conflict(f"{kind} {aggregate_id} exists already")
            if base is not None and current is not None and current.version != base:
                raise StaleState(f"{kind} {aggregate_id} was changed by someone else")
        taken = {p.name for p in store.projects.values()}
        for project in staged.projects.values():
            if project.id not in store.projects and project.name in taken:
                raise Conflict(f"a project named {project.name!r} exists already")
        tokens = {a.token_hash: a.id for a in store.agents.values()}
        for agent in staged.agents.values():
            if tokens.get(agent.token_hash, agent.id) != agent.id:
                raise Conflict("an agent has this token already")

    def committed_events(self) -> list[Event]:
        return list(self._committed)


def memory_uow_factory(store: InMemoryStore) -> Callable[[], InMemoryUnitOfWork]:
    """What the message bus calls for each command: ``uow_factory()``."""
    return partial(InMemoryUnitOfWork, store)
