"""Alembic environment: migrations run on a connection handed over by ``migrate``.

``migrate(engine)`` passes its (sync-wrapped) connection in ``config.attributes``; without one
(``python -m ferrous.infrastructure.sql.migrations revision ...``) a fresh async engine is made
from the ``sqlalchemy.url`` option.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from ferrous.infrastructure.sql.engine import create_engine
from ferrous.infrastructure.sql.schema import metadata

config = context.config


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite's ALTER is limited
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_with_url(url: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(run_migrations)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()
elif (given := config.attributes.get("connection")) is not None:
    run_migrations(given)
else:
    asyncio.run(run_with_url(config.get_main_option("sqlalchemy.url") or ""))
