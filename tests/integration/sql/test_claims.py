"""Which jobs an agent may take, and how concurrent claims stay apart."""

from __future__ import annotations

import asyncio

import pytest

from ferrous.application.ports import JobRef, StaleState
from ferrous.domain.statuses import JobStatus, When
from tests.integration.sql.conftest import Storage
from tests.integration.sql.factories import at, job, new_build, seed_pipeline, store_build


async def _three_builds(storage: Storage) -> dict[str, JobRef]:
    """Pending jobs queued at t=0 (b0), t=10 (b1) and t=5 (b2), with various tags."""
    _, pipeline = await seed_pipeline(storage.uow_factory)
    refs: dict[str, JobRef] = {}
    plans = {
        0: [job("b0-plain", stage_index=0), job("b0-gpu", stage_index=0, tags=("gpu", "linux"))],
        10: [job("b1-first", stage_index=0), job("b1-second", stage_index=0, tags=("linux",))],
        5: [job("b2-linux", stage_index=0, tags=("linux",)), job("b2-later", stage_index=1)],
    }
    for number, (when, jobs) in enumerate(plans.items(), start=1):
        build = await store_build(
            storage.uow_factory, new_build(pipeline, number, jobs, now=at(when))
        )
        for name, j in build.jobs.items():
            refs[name] = JobRef(build_id=build.id, job_id=j.id)
    return refs


async def _claimable(storage: Storage, labels: set[str], limit: int = 10) -> list[JobRef]:
    async with storage.uow_factory() as uow:
        return await uow.builds.claimable(frozenset(labels), limit)


async def test_oldest_first_and_only_jobs_whose_tags_the_agent_has(storage: Storage) -> None:
    refs = await _three_builds(storage)
    names = {ref: name for name, ref in refs.items()}

    async def claimable(labels: set[str], limit: int = 10) -> list[str]:
        return [names[ref] for ref in await _claimable(storage, labels, limit)]

    assert await claimable(set()) == ["b0-plain", "b1-first"]
    assert await claimable({"linux"}) == ["b0-plain", "b2-linux", "b1-first", "b1-second"]
    assert await claimable({"gpu"}) == ["b0-plain", "b1-first"]
    assert await claimable({"gpu", "linux", "arm"}) == [
        "b0-plain",
        "b0-gpu",
        "b2-linux",
        "b1-first",
        "b1-second",
    ]
    assert await claimable({"gpu", "linux"}, limit=2) == ["b0-plain", "b0-gpu"]


async def test_started_jobs_are_no_longer_claimable(storage: Storage) -> None:
    refs = await _three_builds(storage)
    first = refs["b0-plain"]
    async with storage.uow_factory() as uow:
        build = await uow.builds.get(first.build_id)
        build.start_job(first.job_id, "agent-1", at(20))
        await uow.builds.save(build)
        await uow.commit()
    assert first not in await _claimable(storage, {"gpu", "linux"})
    async with storage.uow_factory() as uow:
        assert await uow.builds.running_on("agent-1") == [first]
        assert await uow.builds.running_on("agent-2") == []
        assert await uow.builds.build_of_job(first.job_id) == first.build_id
        lease = await uow.builds.job_lease(first.job_id)
    assert (lease.build_id, lease.agent_id, lease.status, lease.attempt) == (
        first.build_id,
        "agent-1",
        JobStatus.RUNNING.value,
        1,
    )


async def test_delayed_jobs_become_due(storage: Storage) -> None:
    _, pipeline = await seed_pipeline(storage.uow_factory)
    build = await store_build(
        storage.uow_factory,
        new_build(pipeline, 1, [job("later", stage_index=0, when=When.DELAYED, start_in=60)]),
    )
    assert build.jobs["later"].status == JobStatus.SCHEDULED
    async with storage.uow_factory() as uow:
        assert await uow.builds.with_due_jobs(at(59)) == []
        assert await uow.builds.with_due_jobs(at(60)) == [build.id]
        assert await uow.builds.claimable(frozenset(), 10) == []


async def test_concurrent_claimers_take_different_jobs(storage: Storage) -> None:
    """Claim as the use case does (claim, load, start, save), with retries on StaleState.

    A claimer may find nothing while others hold the pending rows (SKIP LOCKED), so claimers
    run in rounds until every job is taken; no job may be started twice.
    """
    _, pipeline = await seed_pipeline(storage.uow_factory)
    build_ids = []
    for number in range(1, 4):
        jobs = [job(f"j{i}", stage_index=0) for i in range(4)]
        build = new_build(pipeline, number, jobs, now=at(number))
        build_ids.append((await store_build(storage.uow_factory, build)).id)

    async def claim(agent_id: str) -> str | None:
        for _ in range(50):
            try:
                async with storage.uow_factory() as uow:
                    for ref in await uow.builds.claimable(frozenset(), 2):
                        build = await uow.builds.get(ref.build_id)
                        if build.job(ref.job_id).status != JobStatus.PENDING:
                            continue
                        build.start_job(ref.job_id, agent_id, at(100))
                        await uow.builds.save(build)
                        await uow.commit()
                        return ref.job_id
                    return None
            except StaleState:
                await asyncio.sleep(0.001)
        raise AssertionError("claim kept failing")

    taken: list[str] = []
    for _ in range(10):
        claimed = await asyncio.wait_for(asyncio.gather(*(claim(f"a{i}") for i in range(8))), 60)
        taken += [job_id for job_id in claimed if job_id is not None]
        if len(taken) >= 12:
            break
    assert len(taken) == 12
    assert len(set(taken)) == 12
    async with storage.uow_factory() as uow:
        for build_id in build_ids:
            build = await uow.builds.get(build_id)
            assert {(j.status, j.attempt) for j in build.jobs.values()} == {(JobStatus.RUNNING, 1)}
        assert await uow.builds.claimable(frozenset(), 10) == []


async def test_open_claims_are_skipped_by_other_transactions(storage: Storage) -> None:
    """PostgreSQL's FOR UPDATE SKIP LOCKED (and the memory adapter's imitation of it)."""
    if storage.backend == "sqlite":
        pytest.skip("SQLite claims one at a time behind its write lock (no row locks)")
    refs = await _three_builds(storage)
    async with storage.uow_factory() as first, storage.uow_factory() as second:
        mine = await first.builds.claimable(frozenset(), 1)
        theirs = await asyncio.wait_for(second.builds.claimable(frozenset(), 1), 5)
        assert mine == [refs["b0-plain"]]
        assert theirs == [refs["b1-first"]]
    # the locks end with the transactions
    assert await _claimable(storage, set(), 1) == [refs["b0-plain"]]
