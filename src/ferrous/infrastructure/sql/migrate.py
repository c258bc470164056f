"""Bring a database's schema to the newest revision; the server calls this on start.

Everything Alembic needs ships inside the package (no ``alembic.ini``). On PostgreSQL an
advisory lock makes servers that start together migrate one after the other; on SQLite the
write gate and ``BEGIN IMMEDIATE`` do. The whole upgrade is one transaction on both.

Developers make a new revision from the changed ``schema.py`` with::

    python -m ferrous.infrastructure.sql.migrations revision "add artifacts" sqlite:///tmp/x.db
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from ferrous.infrastructure.sql.session import SqlSession

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
#: pg_advisory_xact_lock key: "ferrous" + "mig" as a number, any constant would do.
ADVISORY_LOCK_KEY = 0x666572726F7573


def alembic_config(connection: Connection | None = None, url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url)
    config.attributes["connection"] = connection
    return config


async def migrate(engine: AsyncEngine, revision: str = "head") -> None:
    """Upgrade the database of ``engine`` to ``revision`` (default: the newest)."""
    session = SqlSession(engine)
    try:
        conn = await session.connection(write=True)
        if session.is_postgres:
            await conn.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY}
            )
        await conn.run_sync(_upgrade, revision)
        await session.commit()
    finally:
        await session.close()


def _upgrade(connection: Connection, revision: str) -> None:
    command.upgrade(alembic_config(connection), revision)
