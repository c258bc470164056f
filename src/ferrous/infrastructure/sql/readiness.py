"""The database's readiness probe: reachable, and migrated to this server's head revision.

The probe has an engine of its own without a pool: each check opens one connection and
closes it, so an idle server holds no connection for its prober, and a check after the
database restarted never meets a pooled connection the restart broke (the server's own
pool finds those out by itself).
"""

from __future__ import annotations

from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import URL, Connection
from sqlalchemy.pool import NullPool

from ferrous.domain.errors import NotReady
from ferrous.infrastructure.sql.engine import create_engine
from ferrous.infrastructure.sql.migrate import alembic_config


def migration_revisions() -> tuple[str, frozenset[str]]:
    """The head revision of the migrations shipped with this server, and every revision."""
    script = ScriptDirectory.from_config(alembic_config())
    head = script.get_current_head()
    if head is None:
        raise NotReady("no migrations found")
    return head, frozenset(revision.revision for revision in script.walk_revisions())


class SqlReadinessProbe:
    def __init__(self, url: str | URL) -> None:
        """Nothing connects until the first check."""
        self._engine = create_engine(url, poolclass=NullPool)
        self.head, self._known = migration_revisions()

    async def __call__(self) -> None:
        """Returns when the database answers at the head revision; raises ``NotReady``
        when it answers at another, the driver's error when it does not answer."""
        async with self._engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
            current = await conn.run_sync(_current_revisions)
        if current == (self.head,):
            return
        raise NotReady(self._why(current))

    async def close(self) -> None:
        await self._engine.dispose()

    def _why(self, current: tuple[str, ...]) -> str:
        if not current:
            return f"not migrated: the database has no schema yet (this server needs {self.head})"
        shown = ", ".join(current)
        if all(revision in self._known for revision in current):
            return f"not migrated: the database is at {shown}, this server needs {self.head}"
        return (
            f"not migrated: the database is at {shown}, which this server does not know "
            f"(it needs {self.head}): a newer server migrated it?"
        )


def _current_revisions(connection: Connection) -> tuple[str, ...]:
    """The database's revisions; empty without an ``alembic_version`` table."""
    return tuple(MigrationContext.configure(connection).get_current_heads())
