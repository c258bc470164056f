"""Engines for SQLite (the zero-setup default) and PostgreSQL (production).

SQLite: WAL, ``synchronous=NORMAL``, foreign keys on, calls inline on the event loop's thread
(``sqlite_inline``), and one writer at a time (``sqlite_writes``). PostgreSQL: asyncpg with a
queue pool.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from ferrous.domain.errors import StorageError
from ferrous.infrastructure.sql.sqlite_inline import inline_creator
from ferrous.infrastructure.sql.sqlite_writes import BUSY_TIMEOUT_MS, install_begin_hook
from ferrous.infrastructure.sql.types import json_dumps

SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA temp_store=MEMORY",
    "PRAGMA cache_size=-8000",  # KiB per connection
)

_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}
_ALIASES = {"postgres": "postgresql", "sqlite3": "sqlite"}


def async_url(url: str | URL) -> URL:
    """``postgresql://`` and ``sqlite:///`` URLs with their asyncio driver added."""
    parsed = make_url(url)
    backend = _ALIASES.get(parsed.get_backend_name(), parsed.get_backend_name())
    if backend not in _DRIVERS:
        raise StorageError(f"unsupported database URL {parsed!r}: use sqlite or postgresql")
    if parsed.drivername in (backend, parsed.get_backend_name()):
        parsed = parsed.set(drivername=_DRIVERS[backend])
    return parsed


def create_engine(
    url: str | URL,
    *,
    pool_size: int | None = None,
    echo: bool = False,
    sqlite_inline: bool = True,
    **kwargs: Any,
) -> AsyncEngine:
    """An engine for ``sqlite+aiosqlite:///path`` or ``postgresql+asyncpg://...``.

    Plain ``sqlite:///`` and ``postgresql://`` URLs get their driver added. SQLite calls run
    on the event loop's thread (``sqlite_inline``, see ``sqlite_inline``); pass False for
    aiosqlite's worker thread. Extra keyword arguments go to ``create_async_engine``.
    """
    parsed = async_url(url)
    sqlite = parsed.get_backend_name() == "sqlite"
    options: dict[str, Any] = {"echo": echo, "json_serializer": json_dumps, **kwargs}
    if "poolclass" not in options:  # a queue pool: size it
        # SQLite connections are a file handle each: enough of them that a burst of
        # concurrent requests does not open and close overflow connections (with pragmas).
        options.setdefault("pool_size", pool_size or (32 if sqlite else 10))
        options.setdefault("max_overflow", 8 if sqlite else 10)
        if not sqlite:
            options.setdefault("pool_recycle", 1800)
    if not sqlite:
        connect_args = options.setdefault("connect_args", {})
        connect_args.setdefault("server_settings", {}).setdefault("application_name", "ferrous")
    if sqlite:
        path = parsed.database or ""
        if path in ("", ":memory:") or path.startswith("file::memory:"):
            raise StorageError(
                "an in-memory SQLite database cannot be shared by units of work: "
                "use a file (even a temporary one) or the in-memory adapters"
            )
        if sqlite_inline:
            options.setdefault("async_creator", inline_creator(path, SQLITE_PRAGMAS))
    engine = create_async_engine(parsed, **options)
    if sqlite:
        _configure_sqlite(engine, inline=sqlite_inline)
    return engine


def is_sqlite(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "sqlite"


def _configure_sqlite(engine: AsyncEngine, *, inline: bool) -> None:
    sync_engine = engine.sync_engine

    if not inline:  # the inline connections are made with these settings

        @event.listens_for(sync_engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            # Ferrous emits BEGIN itself (sqlite_writes), so the driver must not.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            for pragma in (*SQLITE_PRAGMAS, f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}"):
                cursor.execute(pragma)
            cursor.close()

    install_begin_hook(engine)
