"""The composition of ``ferrous admin`` and ``ferrous secrets reseal``: the bus on the settings'
database, with no server running (no broker, no agents, no background loops).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace

from sqlalchemy.ext.asyncio import AsyncEngine

from ferrous.application.bootstrap import with_identities
from ferrous.application.commands import ResealSecrets
from ferrous.application.dependencies import Dependencies, SystemClock
from ferrous.application.identity_queries import IdentityQueries
from ferrous.application.messagebus import MessageBus
from ferrous.infrastructure.git.source_repository import GitSourceRepository
from ferrous.infrastructure.security.secret_box import AesGcmSecretBox, KeyRing, load_keys
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
    def signing_in(deps: Dependencies, keys: KeyRing) -> Dependencies:
        return with_identities(deps, settings, keys)

    async with _offline(settings, signing_in) as (engine, bus):
        yield Administration(bus=bus, identities=SqlIdentityQueries(engine))


async def reseal_stored_secrets(settings: Settings) -> int:
    """Seal every stored secret again under the current key (``ferrous secrets reseal``);
    how many values. Servers may run meanwhile: one that meets a value sealed with a key it
    does not know reloads its keys (the key file is shared; ``FERROUS_SECRET_KEY`` must name
    the new key on every server first)."""
    async with _offline(
        settings, lambda deps, keys: replace(deps, secret_box=AesGcmSecretBox(keys))
    ) as (engine, bus):
        projects = await SqlQueries(engine).list_projects()
        resealed: int = await bus.handle(ResealSecrets(project_ids=tuple(p.id for p in projects)))
        return resealed


@asynccontextmanager
async def _offline(
    settings: Settings, shape: Callable[[Dependencies, KeyRing], Dependencies]
) -> AsyncIterator[tuple[AsyncEngine, MessageBus]]:
    """The settings' database, migrated, and a bus on it whose dependencies ``shape``
    completes with what the command needs (it gets the installation's keys)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_engine(settings.resolved_database_url)
    try:
        await migrate(engine)
        deps = Dependencies(
            clock=SystemClock(),
            sources=GitSourceRepository(settings.data_dir / "trees", settings.data_dir / "mirrors"),
        )
        deps = shape(deps, load_keys(settings.secret_key, settings.data_dir))
        yield engine, MessageBus(lambda: SqlUnitOfWork(engine), deps)
    finally:
        await engine.dispose()
