"""Repository contract: the same tests on SQLite, PostgreSQL and memory."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC

import pytest

from ferrous.application.ports import StaleState, UnitOfWork
from ferrous.domain.agent import AgentStatus
from ferrous.domain.build import RUNNER_SYSTEM_FAILURE, Build
from ferrous.domain.errors import Conflict, NotFound
from ferrous.domain.events import (
    BuildCreated,
    JobCompleted,
    JobQueued,
    JobStarted,
    PipelineCreated,
    ProjectCreated,
)
from ferrous.domain.project import Pipeline, Project
from ferrous.domain.statuses import BuildStatus, JobStatus, When
from tests.integration.sql.conftest import Storage
from tests.integration.sql.factories import (
    T0,
    at,
    job,
    new_agent,
    new_build,
    seed_pipeline,
    store_build,
)

UowFactory = Callable[[], UnitOfWork]


async def test_project_and_pipelines_round_trip(storage: Storage) -> None:
    project, pipeline = await seed_pipeline(storage.uow_factory)
    nightly = Pipeline.create(project_id=project.id, name="nightly", config_path="ci.yml", now=T0)
    async with storage.uow_factory() as uow:
        await uow.pipelines.add(nightly)
        await uow.commit()

    async with storage.uow_factory() as uow:
        assert await uow.projects.get(project.id) == project
        assert await uow.projects.get_by_name("demo") == project
        assert await uow.pipelines.get(pipeline.id) == pipeline
        assert await uow.pipelines.get_by_name(project.id, "nightly") == nightly
        listed = await uow.pipelines.list_for_project(project.id)
        assert [p.name for p in listed] == ["default", "nightly"]
        loaded = await uow.pipelines.get(nightly.id)
        loaded.disable()
        await uow.pipelines.save(loaded)
        await uow.commit()

    async with storage.uow_factory() as uow:
        stored = await uow.pipelines.get(nightly.id)
        assert stored.enabled is False
        assert stored.config_path == "ci.yml"
        assert stored.created_at == T0
        assert stored.created_at.tzinfo is not None
        assert stored.created_at.utcoffset() == UTC.utcoffset(None)
    names = [m.name for m in await storage.unpublished()]
    assert names == ["ProjectCreated", "PipelineCreated", "PipelineCreated", "PipelineDisabled"]


async def test_unknown_ids_are_not_found(storage: Storage) -> None:
    async with storage.uow_factory() as uow:
        for lookup in (
            uow.projects.get("nope"),
            uow.projects.get_by_name("nope"),
            uow.pipelines.get("nope"),
            uow.pipelines.get_by_name("nope", "default"),
            uow.pipelines.allocate_number("nope"),
            uow.builds.get("nope"),
            uow.builds.build_of_job("nope"),
            uow.builds.job_lease("nope"),
            uow.agents.get("nope"),
            uow.agents.get_by_token_hash("nope"),
        ):
            with pytest.raises(NotFound):
                await lookup


async def _commit(storage: Storage, *aggregates: Project | Pipeline | Build) -> None:
    async with storage.uow_factory() as uow:
        for aggregate in aggregates:
            if isinstance(aggregate, Project):
                await uow.projects.add(aggregate)
            elif isinstance(aggregate, Pipeline):
                await uow.pipelines.add(aggregate)
            else:
                await uow.builds.add(aggregate)
        await uow.commit()


async def test_unique_names_and_references_conflict(storage: Storage) -> None:
    project, pipeline = await seed_pipeline(storage.uow_factory)
    other = Project.create(name="demo", repo_url="/x", default_branch="main", now=T0)
    with pytest.raises(Conflict):
        await _commit(storage, other)
    twin = Pipeline.create(project_id=project.id, name="default", config_path=None, now=T0)
    with pytest.raises(Conflict):
        await _commit(storage, twin)
    orphan = Pipeline.create(project_id=project.id, name="ghost", config_path=None, now=T0)
    with pytest.raises(Conflict):  # a build of a pipeline that does not exist
        await _commit(storage, new_build(orphan, 1))
    with pytest.raises(Conflict):  # build numbers are unique per pipeline
        await _commit(storage, new_build(pipeline, 1), new_build(pipeline, 1))
    await _commit(storage, new_build(pipeline, 1))  # nothing of the above was stored


async def test_leaving_without_commit_rolls_back(storage: Storage) -> None:
    project = Project.create(name="gone", repo_url="/x", default_branch="main", now=T0)
    async with storage.uow_factory() as uow:
        await uow.projects.add(project)
    async with storage.uow_factory() as uow:
        with pytest.raises(NotFound):
            await uow.projects.get(project.id)
        assert uow.committed_events() == []
    assert await storage.unpublished() == []


async def test_build_round_trip_with_jobs_attempts_and_events(storage: Storage) -> None:
    _, pipeline = await seed_pipeline(storage.uow_factory)
    build = new_build(
        pipeline,
        1,
        [
            job("compile", stage="build", stage_index=0, tags=("linux", "docker")),
            job("unit", needs=("compile",), retry_max=1, retry_when=("script_failure",)),
            job("deploy", stage="deploy", stage_index=2, when=When.MANUAL, allow_failure=True),
        ],
        variables={"Z_LAST": "1", "A": "two", "MIDDLE": "$A"},  # order matters: kept
        problems=[{"severity": "warning", "message": "old keyword", "line": 3}],
    )
    async with storage.uow_factory() as uow:
        await uow.builds.add(build)
        await uow.commit()
        committed = uow.committed_events()
    assert [type(e) for e in committed] == [BuildCreated, JobQueued]
    assert build.events == []

    async with storage.uow_factory() as uow:
        loaded = await uow.builds.get(build.id)
        unit_spec = await uow.builds.job_spec(build.jobs["unit"].id)
    assert [j.spec for j in loaded.jobs.values()] == [None] * 3  # read with job_spec
    for j in loaded.jobs.values():
        j.spec = build.jobs[j.name].spec
    assert loaded == build
    assert list(loaded.jobs) == ["compile", "unit", "deploy"]
    assert list(loaded.variables) == ["Z_LAST", "A", "MIDDLE"]
    assert unit_spec == build.jobs["unit"].spec
    assert list(unit_spec) == list(build.jobs["unit"].spec)
    assert loaded.jobs["compile"].definition.tags == ("linux", "docker")
    assert loaded.jobs["compile"].status == JobStatus.PENDING
    assert loaded.jobs["compile"].queued_at == T0

    # run it: compile succeeds, unit fails once (retried), then succeeds
    async with storage.uow_factory() as uow:
        b = await uow.builds.get(build.id)
        compile_job = b.jobs["compile"]
        b.start_job(compile_job.id, "agent-1", at(1))
        await uow.builds.save(b)
        await uow.commit()
        started = uow.committed_events()
    async with storage.uow_factory() as uow:
        b = await uow.builds.get(build.id)
        b.complete_job(compile_job.id, attempt=1, exit_code=0, failure_reason=None, now=at(2))
        unit = b.jobs["unit"]
        b.start_job(unit.id, "agent-2", at(3))
        b.complete_job(unit.id, attempt=1, exit_code=1, failure_reason=None, now=at(4))
        assert b.jobs["unit"].status == JobStatus.PENDING  # retried
        b.start_job(unit.id, "agent-1", at(5))
        await uow.builds.save(b)
        await uow.commit()
        events = uow.committed_events()
    assert [type(e) for e in events][:3] == [JobCompleted, JobQueued, JobStarted]

    async with storage.uow_factory() as uow:
        again = await uow.builds.get(build.id)
    assert again == b
    assert again.version == 2
    assert [a.number for a in again.jobs["unit"].history] == [1]
    assert again.jobs["unit"].history[0].exit_code == 1
    assert again.jobs["unit"].history[0].agent_id == "agent-2"
    assert again.jobs["unit"].attempt == 2
    assert again.status == BuildStatus.RUNNING

    names = [m.name for m in await storage.unpublished()]
    assert names[:2] == ["ProjectCreated", "PipelineCreated"]
    assert names[2:] == [type(e).__name__ for e in (*committed, *started, *events)]
    payload = (await storage.unpublished())[2].payload
    assert payload["build_id"] == build.id
    assert payload["number"] == 1


async def test_save_after_another_unit_of_work_saved_is_stale(storage: Storage) -> None:
    _, pipeline = await seed_pipeline(storage.uow_factory)
    build = await store_build(storage.uow_factory, new_build(pipeline, 1))
    async with storage.uow_factory() as first, storage.uow_factory() as second:
        mine = await first.builds.get(build.id)
        theirs = await second.builds.get(build.id)
        theirs.cancel(at(1))
        await second.builds.save(theirs)
        await second.commit()
        mine.start_job(mine.jobs["build"].id, "agent-1", at(2))
        with pytest.raises(StaleState):
            await first.builds.save(mine)
    async with storage.uow_factory() as uow:
        stored = await uow.builds.get(build.id)
    assert stored.status == BuildStatus.CANCELED
    assert stored.version == 1


async def test_of_two_concurrent_saves_one_wins(storage: Storage) -> None:
    """Both load, both save: the second to commit fails, whatever the backend's locking."""
    _, pipeline = await seed_pipeline(storage.uow_factory)
    build = await store_build(storage.uow_factory, new_build(pipeline, 1))
    loaded = asyncio.Barrier(2)

    async def start(agent_id: str) -> str:
        async with storage.uow_factory() as uow:
            b = await uow.builds.get(build.id)
            await loaded.wait()
            b.start_job(b.jobs["build"].id, agent_id, at(1))
            try:
                await uow.builds.save(b)
                await uow.commit()
            except StaleState:
                return "stale"
            return "saved"

    outcomes = await asyncio.wait_for(asyncio.gather(start("a"), start("b")), 10)
    assert sorted(outcomes) == ["saved", "stale"]
    async with storage.uow_factory() as uow:
        stored = await uow.builds.get(build.id)
    assert stored.version == 1
    assert stored.jobs["build"].attempt == 1


async def test_build_saved_from_an_earlier_unit_of_work(storage: Storage) -> None:
    """An aggregate loaded in one unit of work may be saved in the next (no snapshot there)."""
    _, pipeline = await seed_pipeline(storage.uow_factory)
    build = await store_build(
        storage.uow_factory, new_build(pipeline, 1, [job("a", stage_index=0), job("b")])
    )
    async with storage.uow_factory() as uow:
        b = await uow.builds.get(build.id)
    b.start_job(b.jobs["a"].id, "agent-1", at(1))
    b.complete_job(b.jobs["a"].id, attempt=1, exit_code=0, failure_reason=None, now=at(2))
    async with storage.uow_factory() as uow:
        await uow.builds.save(b)
        await uow.commit()
    async with storage.uow_factory() as uow:
        assert await uow.builds.get(build.id) == b


async def test_agents_round_trip_with_optimistic_concurrency(storage: Storage) -> None:
    agent = new_agent(labels=("docker", "linux"), token_hash="hash-1", embedded=True)
    quiet = new_agent(name="quiet", token_hash="hash-2", now=at(-120))
    async with storage.uow_factory() as uow:
        await uow.agents.add(agent)
        await uow.agents.add(quiet)
        await uow.commit()
    async with storage.uow_factory() as uow:
        assert await uow.agents.get(agent.id) == agent
        by_token = await uow.agents.get_by_token_hash("hash-1")
        assert by_token.labels == frozenset({"docker", "linux"})
        assert by_token.embedded is True
        assert [a.id for a in await uow.agents.silent_since(at(-60))] == [quiet.id]
        by_token.seen(at(10))
        await uow.agents.save(by_token)
        await uow.commit()
    async with storage.uow_factory() as uow:
        stale = agent  # version 0, saved since
        stale.disconnect("test")
        with pytest.raises(StaleState):
            await uow.agents.save(stale)
    async with storage.uow_factory() as uow:
        stored = await uow.agents.get(agent.id)
    assert stored.version == 1
    assert stored.last_seen_at == at(10)
    assert stored.status == AgentStatus.ONLINE
    assert [m.name for m in await storage.unpublished()] == ["AgentRegistered"] * 2


async def test_allocate_number_under_concurrency(storage: Storage) -> None:
    _, pipeline = await seed_pipeline(storage.uow_factory)

    async def allocate() -> int:
        async with storage.uow_factory() as uow:
            number = await uow.pipelines.allocate_number(pipeline.id)
            await asyncio.sleep(0)
            await uow.commit()
            return number

    numbers = await asyncio.wait_for(asyncio.gather(*(allocate() for _ in range(20))), 30)
    assert sorted(numbers) == list(range(1, 21))


async def test_commit_twice_and_committed_events(storage: Storage) -> None:
    async with storage.uow_factory() as uow:
        first = Project.create(name="one", repo_url="/1", default_branch="main", now=T0)
        await uow.projects.add(first)
        await uow.commit()
        second = Project.create(name="two", repo_url="/2", default_branch="main", now=T0)
        await uow.projects.add(second)
        await uow.commit()
        events = uow.committed_events()
    assert events == [
        ProjectCreated(project_id=first.id, name="one"),
        ProjectCreated(project_id=second.id, name="two"),
    ]
    messages = await storage.unpublished()
    assert [m.event() for m in messages] == events
    assert messages[0].id < messages[1].id


async def test_events_recorded_after_add_are_committed(storage: Storage) -> None:
    project = Project.create(name="late", repo_url="/x", default_branch="main", now=T0)
    pipeline = Pipeline.create(project_id=project.id, name="p", config_path=None, now=T0)
    async with storage.uow_factory() as uow:
        await uow.projects.add(project)
        await uow.pipelines.add(pipeline)
        pipeline.disable()  # recorded after add: still part of this commit
        await uow.commit()
    names = [m.name for m in await storage.unpublished()]
    assert names == ["ProjectCreated", "PipelineCreated", "PipelineDisabled"]
    assert isinstance((await storage.unpublished())[1].event(), PipelineCreated)


async def test_lost_job_is_retried_or_failed(storage: Storage) -> None:
    _, pipeline = await seed_pipeline(storage.uow_factory)
    build = await store_build(
        storage.uow_factory,
        new_build(pipeline, 1, [job("flaky", retry_max=1, retry_when=(RUNNER_SYSTEM_FAILURE,))]),
    )
    for attempt in (1, 2):
        async with storage.uow_factory() as uow:
            b = await uow.builds.get(build.id)
            job_id = b.jobs["flaky"].id
            b.start_job(job_id, f"agent-{attempt}", at(attempt))
            b.lose_job(job_id, at(attempt + 0.5))
            await uow.builds.save(b)
            await uow.commit()
    async with storage.uow_factory() as uow:
        stored = await uow.builds.get(build.id)
    flaky = stored.jobs["flaky"]
    assert flaky.status == JobStatus.FAILED
    assert [(a.number, a.failure_reason) for a in flaky.history] == [
        (1, RUNNER_SYSTEM_FAILURE),
        (2, RUNNER_SYSTEM_FAILURE),
    ]
    assert stored.status == BuildStatus.FAILED
