"""The transactional outbox: events stored with the state that caused them.

``SqlUnitOfWork.commit`` inserts them (``event_rows``). The relay publishes them to the
broker with ``relay_outbox(engine, publish)``, which picks the right transactions:

- PostgreSQL: one transaction fetches the oldest unpublished rows ``FOR UPDATE SKIP
  LOCKED`` (relays of several servers take different rows), publishes and marks them.
- SQLite (one server): fetch in a read transaction, publish, then mark in a short write
  transaction, so that the write lock is not held while the broker answers. (A plain
  ``engine.begin()`` that reads and then writes can fail with "database is locked" on
  SQLite: use ``write_transaction`` for such blocks.)

The relay stops at the first event ``publish`` refuses (it raises, e.g. ``BrokerUnavailable``
during a broker outage): the events published before it are marked, that one and the later
ones stay unpublished, and the next pass starts from it, so events go out in commit order.

Delivery is at least once (a relay that dies between publish and commit publishes again):
consumers must be idempotent; ``OutboxMessage.id`` identifies a redelivery.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ferrous.domain.events import Event
from ferrous.infrastructure.sql.schema import outbox
from ferrous.infrastructure.sql.session import raise_storage_error, write_transaction


@dataclass(frozen=True, slots=True, kw_only=True)
class OutboxMessage:
    id: int
    name: str
    payload: dict[str, Any]
    created_at: datetime

    def event(self) -> Event:
        return Event.from_json(self.name, self.payload)

    def as_message(self) -> dict[str, Any]:
        """What goes on the broker: the outbox id makes redelivery detectable."""
        return {"id": self.id, "name": self.name, "payload": self.payload}


def event_name(event: Event) -> str:
    return event.kind


def event_rows(events: Sequence[Event], now: datetime) -> list[dict[str, Any]]:
    return [{"name": event_name(e), "payload": e.to_json(), "created_at": now} for e in events]


INSERT_EVENTS = insert(outbox)
_UNPUBLISHED = (
    select(outbox.c.id, outbox.c.name, outbox.c.payload, outbox.c.created_at)
    .where(outbox.c.published_at.is_(None))
    .order_by(outbox.c.id)
    .limit(bindparam("limit"))
)
_MARK = (
    update(outbox)
    .where(outbox.c.id.in_(bindparam("ids", expanding=True)))
    .values(published_at=bindparam("now"))
)


async def fetch_unpublished(conn: AsyncConnection, limit: int = 100) -> list[OutboxMessage]:
    """The oldest events not yet published, in commit order."""
    statement = _UNPUBLISHED
    if conn.dialect.name == "postgresql":
        statement = statement.with_for_update(skip_locked=True)
    result = await conn.execute(statement, {"limit": limit})
    return [
        OutboxMessage(id=row.id, name=row.name, payload=row.payload, created_at=row.created_at)
        for row in result
    ]


async def mark_published(
    conn: AsyncConnection, ids: Sequence[int], now: datetime | None = None
) -> None:
    if ids:
        await conn.execute(_MARK, {"ids": list(ids), "now": now or datetime.now(UTC)})


async def relay_outbox(
    engine: AsyncEngine,
    publish: Callable[[OutboxMessage], Awaitable[None]],
    limit: int = 100,
) -> int:
    """Publish the oldest unpublished events, in order, and mark them; returns how many.

    If ``publish`` raises, the events published before are marked, the rest of the batch is
    not (it is published again later, from the one that failed), and the exception
    propagates.
    """
    if engine.dialect.name == "postgresql":
        async with write_transaction(engine) as conn:
            messages = await fetch_unpublished(conn, limit)
            sent, failure = await _publish_in_order(messages, publish)
            await mark_published(conn, sent)
    else:
        try:
            async with engine.connect() as conn:
                messages = await fetch_unpublished(conn, limit)
        except SQLAlchemyError as exc:
            raise_storage_error(exc)
        sent, failure = await _publish_in_order(messages, publish)
        if sent:
            async with write_transaction(engine) as conn:
                await mark_published(conn, sent)
    if failure is not None:
        raise failure
    return len(sent)


async def _publish_in_order(
    messages: Sequence[OutboxMessage], publish: Callable[[OutboxMessage], Awaitable[None]]
) -> tuple[list[int], Exception | None]:
    """The ids of the messages published, up to the first that failed, and its error."""
    sent: list[int] = []
    for message in messages:
        try:
            await publish(message)
        except Exception as exc:
            return sent, exc
        sent.append(message.id)
    return sent, None
