"""The memory object store passes the contract the real stores pass."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ferrous.infrastructure.storage.memory import InMemoryObjectStore
from tests.integration.storage.conftest import Backend
from tests.integration.storage.test_object_store_contract import ObjectStoreContract


@pytest.fixture
def backend() -> Backend:
    store = InMemoryObjectStore()

    def tamper(key: str, data: bytes) -> None:
        store.objects[key] = data

    def leftovers() -> list[str]:
        return sorted(store.unfinished)

    def abandon(key: str) -> None:
        store.unfinished[key] = datetime.now(UTC)

    return Backend("memory", store, tamper, leftovers, abandon)


class TestInMemoryObjectStore(ObjectStoreContract):
    async def test_aclose(self, backend: Backend) -> None:
        await backend.store.aclose()
        assert isinstance(backend.store, InMemoryObjectStore)
        assert backend.store.closed
