"""In-memory adapters: the ports without a database, for unit tests (ours and yours).

``InMemoryUnitOfWork`` keeps the SQL adapter's semantics (the same contract tests run on
both): optimistic concurrency, an outbox, idempotent logs, claim order and skip-locked
claims. Several units of work share one ``InMemoryStore``; ``InMemoryQueries`` reads it::

    store = InMemoryStore()
    bus = MessageBus(memory_uow_factory(store), deps)
    queries = InMemoryQueries(store)
"""

from ferrous.infrastructure.memory.api_tokens import InMemoryApiTokenRepository
from ferrous.infrastructure.memory.audit_log import InMemoryAuditLog
from ferrous.infrastructure.memory.identity_queries import InMemoryIdentityQueries
from ferrous.infrastructure.memory.queries import InMemoryQueries
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
from ferrous.infrastructure.memory.secret_box import PlaintextSecretBox
from ferrous.infrastructure.memory.secret_variables import InMemorySecretVariableRepository
from ferrous.infrastructure.memory.status_reports import InMemoryStatusReportRepository
from ferrous.infrastructure.memory.store import InMemoryStore
from ferrous.infrastructure.memory.test_cases import InMemoryTestCaseStore
from ferrous.infrastructure.memory.trigger_tokens import InMemoryTriggerTokenRepository
from ferrous.infrastructure.memory.unit_of_work import InMemoryUnitOfWork, memory_uow_factory
from ferrous.infrastructure.memory.users import InMemorySessionRepository, InMemoryUserRepository

__all__ = [
    "InMemoryAgentRepository",
    "InMemoryApiTokenRepository",
    "InMemoryAuditLog",
    "InMemoryBuildRepository",
    "InMemoryIdentityQueries",
    "InMemoryLogStore",
    "InMemoryPipelineRepository",
    "InMemoryProjectRepository",
    "InMemoryQueries",
    "InMemoryRegistrationTokenRepository",
    "InMemoryScheduleRepository",
    "InMemorySecretVariableRepository",
    "InMemorySessionRepository",
    "InMemoryStatusReportRepository",
    "InMemoryStore",
    "InMemoryTestCaseStore",
    "InMemoryTriggerTokenRepository",
    "InMemoryUnitOfWork",
    "InMemoryUserRepository",
    "PlaintextSecretBox",
    "memory_uow_factory",
]
