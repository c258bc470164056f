"""In-memory webhook deliveries, with the SQL adapter's uniqueness: a redelivery that
committed first makes the other unit of work's commit fail with ``StaleState``."""

from __future__ import annotations

from ferrous.application.ports import StaleState
from ferrous.domain.webhook_delivery import DeliveryRecord
from ferrous.infrastructure.memory.store import InMemoryStore

Key = tuple[str, str, str]


def _key(record: DeliveryRecord) -> Key:
    return (record.project_id, record.forge, record.delivery_id)


class InMemoryWebhookDeliveryRepository:
    def __init__(self, store: InMemoryStore) -> None:
        self._store = store
        self._added: dict[Key, DeliveryRecord] = {}

    async def find(self, project_id: str, forge: str, delivery_id: str) -> DeliveryRecord | None:
        key = (project_id, forge, delivery_id)
        return self._added.get(key) or self._store.webhook_deliveries.get(key)

    async def add(self, record: DeliveryRecord) -> None:
        if await self.find(*_key(record)) is not None:
            raise StaleState(f"delivery {record.delivery_id} was recorded meanwhile")
        self._added[_key(record)] = record

    def check(self) -> None:
        """Before commit: nobody recorded the same delivery since."""
        for key, record in self._added.items():
            if key in self._store.webhook_deliveries:
                raise StaleState(f"delivery {record.delivery_id} was recorded meanwhile")

    def apply(self) -> None:
        """On commit, after ``check`` (no await in between)."""
        self._store.webhook_deliveries.update(self._added)
