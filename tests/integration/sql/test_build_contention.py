"""Many agents working on one wide build at once: they queue on the build, none retries.

Before claims and completions locked the build they changed, every concurrent writer but one
failed its version check and ran again: with a few hundred parallel jobs the retries never
ended and agents got 503s.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from ferrous.application import commands as c
from ferrous.application.dependencies import Dependencies
from ferrous.application.messagebus import MessageBus
from ferrous.application.ports import StaleState
from ferrous.domain.statuses import BuildStatus, JobStatus
from ferrous.infrastructure.git.source_repository import GitSourceRepository
from tests.integration.sql.conftest import Storage
from tests.integration.sql.factories import job, new_agent, new_build, seed_pipeline, store_build

JOBS = 24
AGENTS = 8


class _Clock:
    def now(self) -> datetime:
        return datetime.now(UTC)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_agents_claiming_and_finishing_jobs_of_one_build_never_retry(
    storage: Storage, tmp_path: Path
) -> None:
    _, pipeline = await seed_pipeline(storage.uow_factory)
    build = await store_build(
        storage.uow_factory,
        new_build(pipeline, 1, [job(f"shard-{n}", stage_index=0) for n in range(JOBS)]),
    )
    agents = [new_agent(f"runner-{n}", capacity=1) for n in range(AGENTS)]
    async with storage.uow_factory() as uow:
        for agent in agents:
            await uow.agents.add(agent)
        await uow.commit()
    bus = MessageBus(
        storage.uow_factory,
        Dependencies(clock=_Clock(), sources=GitSourceRepository(tmp_path / "trees")),
    )
    ran: dict[str, list[str]] = {}

    async def work(agent_id: str) -> None:
        while True:
            payload: dict[str, Any] | None = await bus.handle(c.ClaimJob(agent_id=agent_id))
            if payload is None:
                return
            assert payload["spec"]["script"] == [payload["name"]]  # its own spec, read apart
            ran.setdefault(payload["job_id"], []).append(agent_id)
            await bus.handle(c.Heartbeat(agent_id=agent_id, running_job_ids=(payload["job_id"],)))
            await asyncio.sleep(0.01)  # runs it (SQLite's inline statements never yield)
            await bus.handle(
                c.CompleteJob(agent_id=agent_id, job_id=payload["job_id"], attempt=1, exit_code=0)
            )

    with capture_logs() as logs:
        await asyncio.wait_for(asyncio.gather(*(work(a.id) for a in agents)), 120)

    assert [e["event"] for e in logs if "retried" in e["event"]] == []
    assert sorted(ran) == sorted(j.id for j in build.jobs.values())
    assert all(len(agent_ids) == 1 for agent_ids in ran.values())  # each job ran once
    assert len({a for agent_ids in ran.values() for a in agent_ids}) > 1  # in parallel
    async with storage.uow_factory() as uow:
        done = await uow.builds.get(build.id)
    assert done.status == BuildStatus.SUCCESS
    assert {j.status for j in done.jobs.values()} == {JobStatus.SUCCESS}


async def test_a_writer_that_read_a_job_pending_cannot_undo_its_start(storage: Storage) -> None:
    """Starts leave the build's version alone, so the job rows themselves must stop a
    cancel that read a job pending from overwriting the start that happened since."""
    _, pipeline = await seed_pipeline(storage.uow_factory)
    build = await store_build(
        storage.uow_factory,
        new_build(pipeline, 1, [job("first", stage_index=0), job("second", stage_index=0)]),
    )
    first, second = build.jobs["first"].id, build.jobs["second"].id
    now = datetime.now(UTC)

    async def start(job_id: str) -> None:
        async with storage.uow_factory() as uow:
            loaded = await uow.builds.get(build.id)
            loaded.start_job(job_id, "agent-1", now)
            await uow.builds.save_started(loaded, job_id)
            await uow.commit()

    await start(first)  # the build is running: the next start writes only its job
    async with storage.uow_factory() as canceling:
        stale = await canceling.builds.get(build.id)
        await start(second)
        stale.cancel(now)
        with pytest.raises(StaleState):
            await canceling.builds.save(stale)
    async with storage.uow_factory() as uow:
        stored = await uow.builds.get(build.id)
    assert stored.jobs["second"].status == JobStatus.RUNNING
    assert stored.jobs["second"].agent_id == "agent-1"
