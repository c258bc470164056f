"""The SQL unit of work: one transaction, the repositories on it, the outbox at commit."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from types import TracebackType
from typing import Any, Self

from sqlalchemy.ext.asyncio import AsyncEngine

from ferrous.domain.build import Build
from ferrous.domain.events import BuildCompleted, Event
from ferrous.infrastructure.sql.agent_repository import SqlAgentRepository
from ferrous.infrastructure.sql.api_token_repository import SqlApiTokenRepository
from ferrous.infrastructure.sql.build_repository import SqlBuildRepository
from ferrous.infrastructure.sql.log_store import SqlLogStore
from ferrous.infrastructure.sql.notification_repository import (
    SqlNotificationRepository,
    queue_build_notifications,
)
from ferrous.infrastructure.sql.outbox import INSERT_EVENTS, event_rows
from ferrous.infrastructure.sql.project_repository import (
    SqlPipelineRepository,
    SqlProjectRepository,
)
from ferrous.infrastructure.sql.registration_token_repository import (
    SqlRegistrationTokenRepository,
)
from ferrous.infrastructure.sql.schedule_repository import SqlScheduleRepository
from ferrous.infrastructure.sql.secret_variable_repository import SqlSecretVariableRepository
from ferrous.infrastructure.sql.session import SqlSession
from ferrous.infrastructure.sql.session_repository import SqlSessionRepository
from ferrous.infrastructure.sql.status_report_repository import (
    SqlStatusReportRepository,
    queue_build_reports,
)
from ferrous.infrastructure.sql.trigger_token_repository import SqlTriggerTokenRepository
from ferrous.infrastructure.sql.user_repository import SqlUserRepository
from ferrous.infrastructure.sql.webhook_delivery_repository import SqlWebhookDeliveryRepository


class SqlUnitOfWork:
    """``async with SqlUnitOfWork(engine) as uow: ...; await uow.commit()``.

    Events of the aggregates added or saved through the repositories go to the outbox in the
    commit's transaction, with the commit status reports of the builds whose state changed
    (``status_report_repository``); ``committed_events`` returns them afterwards. Leaving the block
    without ``commit`` rolls back. A unit of work may commit more than once (each commit ends
    a transaction; the next statement begins another). Do not open a unit of work inside
    another on SQLite: the inner one would wait for the outer one's write lock.
    """

    projects: SqlProjectRepository
    pipelines: SqlPipelineRepository
    builds: SqlBuildRepository
    agents: SqlAgentRepository
    registration_tokens: SqlRegistrationTokenRepository
    trigger_tokens: SqlTriggerTokenRepository
    schedules: SqlScheduleRepository
    webhook_deliveries: SqlWebhookDeliveryRepository
    secret_variables: SqlSecretVariableRepository
    status_reports: SqlStatusReportRepository
    notifications: SqlNotificationRepository
    users: SqlUserRepository
    api_tokens: SqlApiTokenRepository
    sessions: SqlSessionRepository
    logs: SqlLogStore

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._committed: list[Event] = []

    async def __aenter__(self) -> Self:
        self._session = SqlSession(self._engine)
        self._seen: dict[int, Any] = {}
        self._committed = []
        track = self._track
        self.projects = SqlProjectRepository(self._session, track)
        self.pipelines = SqlPipelineRepository(self._session, track)
        self.builds = SqlBuildRepository(self._session, track)
        self.agents = SqlAgentRepository(self._session, track)
        self.registration_tokens = SqlRegistrationTokenRepository(self._session)
        self.trigger_tokens = SqlTriggerTokenRepository(self._session)
        self.schedules = SqlScheduleRepository(self._session, track)
        self.webhook_deliveries = SqlWebhookDeliveryRepository(self._session)
        self.secret_variables = SqlSecretVariableRepository(self._session)
        self.status_reports = SqlStatusReportRepository(self._session)
        self.notifications = SqlNotificationRepository(self._session)
        self.users = SqlUserRepository(self._session)
        self.api_tokens = SqlApiTokenRepository(self._session)
        self.sessions = SqlSessionRepository(self._session)
        self.logs = SqlLogStore(self._session)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._session.close()
        self._seen.clear()

    def _track(self, aggregate: Any) -> None:
        self._seen[id(aggregate)] = aggregate

    async def commit(self) -> None:
        events = [event for aggregate in self._seen.values() for event in aggregate.events]
        now = datetime.now(UTC)
        if events:
            await self._session.execute_write(INSERT_EVENTS, event_rows(events, now))
        # builds whose status changed report it to their forge, in this same transaction
        changed = [
            a for a in self._seen.values() if isinstance(a, Build) and self.builds.status_changed(a)
        ]
        await queue_build_reports(self._session, changed, now)
        # builds that finished tell the notification rules, in this same transaction too
        done = {e.build_id for e in events if isinstance(e, BuildCompleted)}
        finished = [a for a in self._seen.values() if isinstance(a, Build) and a.id in done]
        if finished:
            await queue_build_notifications(self._session, finished, now)
        await self._session.commit()
        self.builds.transaction_ended()
        for aggregate in self._seen.values():
            aggregate.events.clear()
        self._seen.clear()
        self._committed.extend(events)

    def committed_events(self) -> list[Event]:
        return list(self._committed)


def sql_uow_factory(engine: AsyncEngine) -> Callable[[], SqlUnitOfWork]:
    """What the message bus calls for each command: ``uow_factory()``."""
    return partial(SqlUnitOfWork, engine)
