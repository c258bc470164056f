"""Webhook deliveries on SQL, unique per project, forge and delivery id.

Two copies of one delivery arriving together both find no record and both create builds;
the unique constraint lets only the first transaction commit. The second gets
``StaleState``, so the bus runs it again on fresh state, where it finds the record and
answers as a redelivery: one build, whoever wins.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, insert, select

from ferrous.application.ports import StaleState
from ferrous.domain.errors import Conflict
from ferrous.domain.webhook_delivery import DeliveryOutcome, DeliveryRecord
from ferrous.infrastructure.sql.schema import webhook_deliveries as t
from ferrous.infrastructure.sql.session import SqlSession


def delivery_record(row: Row[Any]) -> DeliveryRecord:
    return DeliveryRecord(
        id=row.id,
        project_id=row.project_id,
        forge=row.forge,
        delivery_id=row.delivery_id,
        event=row.event,
        received_at=row.received_at,
        outcome=DeliveryOutcome(row.outcome),
        message=row.message,
        build_ids=tuple(row.build_ids),
    )


class SqlWebhookDeliveryRepository:
    def __init__(self, session: SqlSession) -> None:
        self._session = session

    async def find(self, project_id: str, forge: str, delivery_id: str) -> DeliveryRecord | None:
        result = await self._session.execute(
            select(t).where(
                t.c.project_id == project_id, t.c.forge == forge, t.c.delivery_id == delivery_id
            )
        )
        row = result.first()
        return delivery_record(row) if row is not None else None

    async def add(self, record: DeliveryRecord) -> None:
        try:
            await self._session.execute_write(
                insert(t).values(
                    id=record.id,
                    project_id=record.project_id,
                    forge=record.forge,
                    delivery_id=record.delivery_id,
                    event=record.event,
                    received_at=record.received_at,
                    outcome=record.outcome.value,
                    message=record.message,
                    build_ids=list(record.build_ids),
                )
            )
        except Conflict as exc:
            raise StaleState(f"delivery {record.delivery_id} was recorded meanwhile") from exc
