"""The metrics' reads on SQLite and PostgreSQL: the counts of a scrape, attempts' times."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ferrous.application.metrics import BuildTiming, JobTiming
from ferrous.domain.agent import AgentStatus
from ferrous.domain.build import Build
from ferrous.domain.statuses import When
from ferrous.infrastructure.sql.metrics_queries import SqlMetricsQueries
from ferrous.infrastructure.sql.outbox import mark_published
from ferrous.infrastructure.sql.session import write_transaction
from tests.integration.sql.conftest import Storage
from tests.integration.sql.factories import (
    at,
    job,
    new_agent,
    new_build,
    seed_pipeline,
    store_build,
)


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def reads(storage: Storage) -> SqlMetricsQueries:
    assert storage.engine is not None
    return SqlMetricsQueries(storage.engine)


async def _start(storage: Storage, build: Build, name: str, agent_id: str, seconds: float) -> None:
    async with storage.uow_factory() as uow:
        stored = await uow.builds.get(build.id)
        stored.start_job(stored.jobs[name].id, agent_id, at(seconds))
        await uow.builds.save(stored)
        await uow.commit()


async def _complete(storage: Storage, build: Build, name: str, code: int, seconds: float) -> None:
    async with storage.uow_factory() as uow:
        stored = await uow.builds.get(build.id)
        target = stored.jobs[name]
        stored.complete_job(
            target.id,
            attempt=target.attempt,
            exit_code=code,
            failure_reason=None,
            now=at(seconds),
        )
        await uow.builds.save(stored)
        await uow.commit()


async def _agents(storage: Storage) -> tuple[str, str]:
    """An agent online (3 slots), one silent too long (2), one disconnected (4)."""
    online = new_agent("online", capacity=3, now=at(990))
    silent = new_agent("silent", capacity=2, now=at(100))
    gone = new_agent("gone", capacity=4, now=at(995))
    gone.status = AgentStatus.OFFLINE
    async with storage.uow_factory() as uow:
        for agent in (online, silent, gone):
            await uow.agents.add(agent)
        await uow.commit()
    return online.id, silent.id


async def test_a_snapshot_counts_builds_jobs_agents_and_the_outbox(
    storage: Storage, reads: SqlMetricsQueries
) -> None:
    _, pipeline = await seed_pipeline(storage.uow_factory)
    online, silent = await _agents(storage)
    done = await store_build(storage.uow_factory, new_build(pipeline, 1, [job("only")]))
    await _start(storage, done, "only", online, 10)
    await _complete(storage, done, "only", 0, 40)
    waiting = [
        job("plain", stage_index=0),
        job("linux", stage_index=0, tags=("linux",)),
        job("gpu", stage_index=0, tags=("linux", "gpu", "linux")),
        job("gpu-too", stage_index=0, tags=("gpu", "linux")),
        job("ship", stage_index=0, when=When.MANUAL),
    ]
    await store_build(storage.uow_factory, new_build(pipeline, 2, waiting))
    running = [job("here", stage_index=0), job("there", stage_index=0)]
    busy = await store_build(storage.uow_factory, new_build(pipeline, 3, running))
    await _start(storage, busy, "here", online, 50)
    await _start(storage, busy, "there", silent, 50)

    snapshot = await reads.snapshot(at(1000), at(1000) - timedelta(seconds=60))

    assert snapshot.builds == {"success": 1, "running": 2}
    assert snapshot.jobs == {"success": 1, "pending": 4, "manual": 1, "running": 2}
    assert snapshot.pending == {"": 1, "linux": 1, "gpu,linux": 2}
    assert snapshot.running == 2
    assert (snapshot.agents_online, snapshot.capacity_slots, snapshot.used_slots) == (1, 3, 1)
    unpublished = await storage.unpublished()
    assert snapshot.outbox_backlog == len(unpublished) > 0
    oldest = min(message.created_at for message in unpublished)
    later = await reads.snapshot(oldest + timedelta(seconds=42.5), at(0))  # the outbox's clock
    assert later.outbox_oldest_age == pytest.approx(42.5)


async def test_an_empty_installation_and_a_published_outbox(
    storage: Storage, reads: SqlMetricsQueries
) -> None:
    empty = await reads.snapshot(at(0), at(-60))
    assert (empty.builds, empty.jobs, empty.pending) == ({}, {}, {})
    assert (empty.running, empty.agents_online, empty.capacity_slots, empty.used_slots) == (
        0,
        0,
        0,
        0,
    )
    assert (empty.outbox_backlog, empty.outbox_oldest_age) == (0, 0.0)

    await seed_pipeline(storage.uow_factory)
    assert (await reads.snapshot(at(0), at(-60))).outbox_backlog > 0
    assert storage.engine is not None
    ids = [message.id for message in await storage.unpublished()]
    async with write_transaction(storage.engine) as conn:
        await mark_published(conn, ids)
    published = await reads.snapshot(at(0), at(-60))
    assert (published.outbox_backlog, published.outbox_oldest_age) == (0, 0.0)


async def test_an_attempts_times_and_a_builds(storage: Storage, reads: SqlMetricsQueries) -> None:
    _, pipeline = await seed_pipeline(storage.uow_factory)
    build = await store_build(
        storage.uow_factory,
        new_build(pipeline, 1, [job("test", tags=("linux", "docker"), retry_max=1)]),
    )
    await _start(storage, build, "test", "agent-1", 5)
    job_id = build.jobs["test"].id

    assert await reads.job_timing(job_id, 1) == JobTiming(
        tags=("docker", "linux"), queued_at=at(0), started_at=at(5), finished_at=None
    )
    await _complete(storage, build, "test", 1, 20)  # retried: queued again at 20
    await _start(storage, build, "test", "agent-2", 23)
    await _complete(storage, build, "test", 0, 30)

    first = await reads.job_timing(job_id, 1)
    second = await reads.job_timing(job_id, 2)
    assert first is not None
    assert second is not None
    assert (first.started_at, first.finished_at) == (at(5), at(20))
    assert (second.queued_at, second.started_at, second.finished_at) == (at(20), at(23), at(30))
    assert await reads.job_timing(job_id, 3) == JobTiming(
        tags=("docker", "linux"), queued_at=at(20), started_at=None, finished_at=None
    )
    assert await reads.job_timing("no-such-job", 1) is None
    assert await reads.build_timing(build.id) == BuildTiming(
        created_at=at(0), started_at=at(5), finished_at=at(30)
    )
    assert await reads.build_timing("no-such-build") is None
