"""The memory object store passes the contract the real stores pass."""

from __future__ import annotations

import pytest

from ferrous.infrastructure.storage.memory import InMemoryObjectStore
from tests.integration.storage.conftest import Backend
from tests.integration.storage.test_object_store_contract import ObjectStoreContract


@pytest.fixture
def backend() -> Backend:
    store = InMemoryObjectStore()

    def tamper(key: str, data: bytes) -> None:
        store.objects[key] = data

    return Backend("memory", store, tamper, list)


class TestInMemoryObjectStore(ObjectStoreContract):
    async def test_aclose(self, backend: Backend) -> None:
        await backend.store.aclose()
        assert isinstance(backend.store, InMemoryObjectStore)
        assert backend.store.closed
