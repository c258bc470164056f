"""The SQL adapters (SQLAlchemy Core, async): SQLite by default, PostgreSQL in production.

engine = create_engine(settings.resolved_database_url)
await migrate(engine)                      # on server start
bus = MessageBus(sql_uow_factory(engine), deps)
queries = SqlQueries(engine)               # or a read replica's engine
"""

from ferrous.infrastructure.sql.engine import create_engine
from ferrous.infrastructure.sql.migrate import migrate
from ferrous.infrastructure.sql.outbox import (
    OutboxMessage,
    fetch_unpublished,
    mark_published,
    relay_outbox,
)
from ferrous.infrastructure.sql.queries import SqlQueries
from ferrous.infrastructure.sql.schema import metadata
from ferrous.infrastructure.sql.session import write_transaction
from ferrous.infrastructure.sql.unit_of_work import SqlUnitOfWork, sql_uow_factory

__all__ = [
    "OutboxMessage",
    "SqlQueries",
    "SqlUnitOfWork",
    "create_engine",
    "fetch_unpublished",
    "mark_published",
    "metadata",
    "migrate",
    "relay_outbox",
    "sql_uow_factory",
    "write_transaction",
]
