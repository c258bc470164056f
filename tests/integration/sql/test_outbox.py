"""The outbox relay's side: unpublished events in commit order, marked once published."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ferrous.domain.events import ProjectCreated
from ferrous.domain.project import Project
from ferrous.infrastructure.sql import (
    OutboxMessage,
    fetch_unpublished,
    mark_published,
    relay_outbox,
    write_transaction,
)
from tests.integration.sql.conftest import Storage
from tests.integration.sql.factories import T0


async def _create_projects(storage: Storage, count: int, prefix: str = "p") -> list[Project]:
    projects = []
    for i in range(count):
        async with storage.uow_factory() as uow:
            project = Project.create(
                name=f"{prefix}{i}", repo_url="/x", default_branch="main", now=T0
            )
            await uow.projects.add(project)
            await uow.commit()
            projects.append(project)
    return projects


async def _fetch(storage: Storage, limit: int, mark: bool) -> list[int]:
    if storage.store is not None:
        messages = storage.store.fetch_unpublished(limit)
        if mark:
            storage.store.mark_published([m.id for m in messages])
        return [m.id for m in messages]
    assert storage.engine is not None
    async with write_transaction(storage.engine) as conn:
        messages = await fetch_unpublished(conn, limit)
        if mark:
            await mark_published(conn, [m.id for m in messages], datetime.now(UTC))
    return [m.id for m in messages]


async def test_relay_reads_in_order_and_marks(storage: Storage) -> None:
    projects = await _create_projects(storage, 5)
    messages = await storage.unpublished()
    assert [m.event() for m in messages] == [
        ProjectCreated(project_id=p.id, name=p.name) for p in projects
    ]
    assert all(m.created_at.tzinfo is not None for m in messages)
    ids = [m.id for m in messages]
    assert ids == sorted(ids)
    assert messages[0].as_message() == {
        "id": ids[0],
        "name": "ProjectCreated",
        "payload": {"project_id": projects[0].id, "name": "p0"},
    }

    assert await _fetch(storage, 2, mark=False) == ids[:2]
    assert await _fetch(storage, 2, mark=True) == ids[:2]
    assert await _fetch(storage, 10, mark=True) == ids[2:]
    assert await _fetch(storage, 10, mark=True) == []
    await _create_projects(storage, 1, prefix="q")
    assert len(await _fetch(storage, 10, mark=False)) == 1


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_relay_publishes_in_order_once(storage: Storage) -> None:
    assert storage.engine is not None
    projects = await _create_projects(storage, 3)
    published: list[OutboxMessage] = []

    async def publish(message: OutboxMessage) -> None:
        published.append(message)

    async def broken(message: OutboxMessage) -> None:
        raise ConnectionError("broker down")

    with pytest.raises(ConnectionError):
        await relay_outbox(storage.engine, broken)
    assert await relay_outbox(storage.engine, publish, limit=2) == 2
    assert await relay_outbox(storage.engine, publish, limit=2) == 1
    assert await relay_outbox(storage.engine, publish) == 0
    assert [m.event() for m in published] == [
        ProjectCreated(project_id=p.id, name=p.name) for p in projects
    ]
    assert await storage.unpublished() == []
