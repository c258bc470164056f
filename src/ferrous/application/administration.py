"""The composition of ``ferrous admin`` and ``ferrous secrets reseal``: the bus on the settings'
database, with no server running (no broker, no agents, no background loops).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from ferrous.application.bootstrap import with_identities
from ferrous.application.commands import ResealSecrets
from ferrous.application.dependencies import Dependencies, SystemClock
from ferrous.application.identity_queries import IdentityQueries
from ferrous.application.messagebus import MessageBus
from ferrous.infrastructure.git.source_repository import GitSourceRepository
from ferrous.infrastructure.security.secret_box import AesGcmSecretBox, load_keys
from ferrous.infrastructure.settings import Settings
from ferrous.infrastructure.sql.engine import create_engine
from ferrous.infrastructure.sql.identity_queries import SqlIdentityQueries
from ferrous.infrastructure.sql.migrate import migrate
from ferrous.infrastructure.sql.queries import SqlQueries
from ferrous.infrastructure.sql.unit_of_work import SqlUnitOfWork


@dataclass(frozen=True, slots=True)
class Administration:
    """What ``ferrous admin`` works with: the bus and the identities' read side, on the
    settings' database, without a server running."""

    bus: MessageBus
    identities: IdentityQueries


@asynccontextmanager
async def administration(settings: Settings) -> AsyncIterator[Administration]:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_engine(settings.resolved_database_url)
    try:
        await migrate(engine)
        deps = Dependencies(
            clock=SystemClock(),
            sources=GitSourceRepository(settings.data_dir / "trees", settings.data_dir / "mirrors"),
        )
        deps = with_identities(deps, settings, load_keys(settings.secret_key, settings.data_dir))
        bus = MessageBus(lambda: SqlUnitOfWork(engine), deps)
        yield Administration(bus=bus, identities=SqlIdentityQueries(engine))
    finally:
        await engine.dispose()


async def reseal_stored_secrets(settings: Settings) -> int:
    """Seal every stored secret again under the current key (``ferrous secrets reseal``);
    how many values. Servers may run meanwhile: one that meets a value sealed with a key it
    does not know reloads its keys (the key file is shared; ``FERROUS_SECRET_KEY`` must name
    the new key on every server first)."""
    engine = create_engine(settings.resolved_database_url)
    try:
        await migrate(engine)
        deps = Dependencies(
            clock=SystemClock(),
            sources=GitSourceRepository(settings.data_dir / "trees", settings.data_dir / "mirrors"),
            secret_box=AesGcmSecretBox(load_keys(settings.secret_key, settings.data_dir)),
        )
        projects = await SqlQueries(engine).list_projects()
        bus = MessageBus(lambda: SqlUnitOfWork(engine), deps)
        resealed: int = await bus.handle(ResealSecrets(project_ids=tuple(p.id for p in projects)))
        return resealed
    finally:
        await engine.dispose()
