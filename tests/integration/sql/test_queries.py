"""Read side: listings with keyset pagination and filters, details as DTOs."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from ferrous.application.queries import BuildFilter, BuildSummary
from ferrous.domain.build import Build
from ferrous.domain.errors import NotFound
from ferrous.domain.project import Pipeline, Project
from ferrous.domain.statuses import When
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


@dataclass
class History:
    alpha: Project
    beta: Project
    alpha_main: Pipeline
    alpha_nightly: Pipeline
    beta_main: Pipeline
    builds: list[Build]


async def _history(storage: Storage) -> History:
    """23 builds over three pipelines; some share a creation time (ties break on the id)."""
    alpha, alpha_main = await seed_pipeline(storage.uow_factory, "alpha")
    beta, beta_main = await seed_pipeline(storage.uow_factory, "beta")
    alpha_nightly = Pipeline.create(project_id=alpha.id, name="nightly", config_path=None, now=T0)
    async with storage.uow_factory() as uow:
        await uow.pipelines.add(alpha_nightly)
        await uow.commit()
    builds = []
    numbers: dict[str, int] = {}
    pipelines = [alpha_main, alpha_nightly, beta_main]
    async with storage.uow_factory() as uow:
        for i in range(23):
            pipeline = pipelines[i % 3]
            numbers[pipeline.id] = numbers.get(pipeline.id, 0) + 1
            build = new_build(
                pipeline,
                numbers[pipeline.id],
                now=at(i // 2),  # pairs share a timestamp
                ref="main" if i % 4 else "feature/x",
            )
            if i % 5 == 0:
                build.cancel(at(i // 2 + 1))
            await uow.builds.add(build)
            builds.append(build)
        await uow.commit()
    return History(alpha, beta, alpha_main, alpha_nightly, beta_main, builds)


def _newest_first(builds: list[Build]) -> list[str]:
    return [b.id for b in sorted(builds, key=lambda b: (b.created_at, b.id), reverse=True)]


async def _walk(storage: Storage, filters: BuildFilter, limit: int) -> list[BuildSummary]:
    seen: list[BuildSummary] = []
    cursor = None
    for _ in range(100):
        page = await storage.queries.list_builds(filters, limit=limit, cursor=cursor)
        assert len(page.items) <= limit
        seen += page.items
        cursor = page.next_cursor
        if cursor is None:
            return seen
        assert len(page.items) == limit
    raise AssertionError("pagination does not end")


@pytest.mark.parametrize("limit", [1, 7, 23, 50])
async def test_pagination_walks_every_build_once_newest_first(storage: Storage, limit: int) -> None:
    history = await _history(storage)
    seen = await _walk(storage, BuildFilter(), limit)
    assert [s.id for s in seen] == _newest_first(history.builds)


async def test_filters(storage: Storage) -> None:
    history = await _history(storage)
    builds = history.builds
    cases = [
        (BuildFilter(project_id=history.alpha.id), lambda b: b.project_id == history.alpha.id),
        (
            BuildFilter(pipeline_id=history.alpha_nightly.id),
            lambda b: b.pipeline_id == history.alpha_nightly.id,
        ),
        (BuildFilter(status="canceled"), lambda b: b.status.value == "canceled"),
        (BuildFilter(ref="feature/x"), lambda b: b.ref == "feature/x"),
        (
            BuildFilter(created_after=at(3), created_before=at(7)),
            lambda b: at(3) <= b.created_at < at(7),
        ),
        (
            BuildFilter(project_id=history.alpha.id, status="pending", ref="main"),
            lambda b: (
                b.project_id == history.alpha.id and b.status.value == "pending" and b.ref == "main"
            ),
        ),
    ]
    for filters, keep in cases:
        expected = _newest_first([b for b in builds if keep(b)])
        assert expected, filters
        assert [s.id for s in await _walk(storage, filters, 3)] == expected, filters
    page = await storage.queries.list_builds(BuildFilter(project_id="nope"))
    assert page.items == []
    assert page.next_cursor is None


async def test_summary_fields_and_bad_cursor(storage: Storage) -> None:
    history = await _history(storage)
    page = await storage.queries.list_builds(BuildFilter(pipeline_id=history.beta_main.id), limit=1)
    newest = max(
        (b for b in history.builds if b.pipeline_id == history.beta_main.id),
        key=lambda b: (b.created_at, b.id),
    )
    assert page.items == [
        BuildSummary(
            id=newest.id,
            project_id=history.beta.id,
            project_name="beta",
            pipeline_id=history.beta_main.id,
            pipeline_name="default",
            number=newest.number,
            ref=newest.ref,
            sha=newest.sha,
            source="push",
            status=newest.status.value,
            created_at=newest.created_at,
            started_at=None,
            finished_at=newest.finished_at,
        )
    ]
    with pytest.raises(NotFound):
        await storage.queries.list_builds(BuildFilter(), cursor="not a cursor")


async def test_get_build_and_job(storage: Storage) -> None:
    _, pipeline = await seed_pipeline(storage.uow_factory)
    build = await store_build(
        storage.uow_factory,
        new_build(
            pipeline,
            1,
            [
                job("lint", stage="check", stage_index=0),
                job("compile", stage="build", stage_index=1, tags=("linux", "docker")),
                job("unit", stage="test", stage_index=2, needs=("compile",), retry_max=1),
                job("e2e", stage="test", stage_index=2, when=When.MANUAL, allow_failure=True),
            ],
            variables={"TOKEN": "secret", "A": "1"},
            problems=[{"severity": "warning", "message": "deprecated", "line": 2}],
        ),
    )
    lint = build.jobs["lint"]
    async with storage.uow_factory() as uow:
        b = await uow.builds.get(build.id)
        b.start_job(lint.id, "agent-1", at(1))
        b.complete_job(lint.id, attempt=1, exit_code=3, failure_reason=None, now=at(2))
        await uow.builds.save(b)
        await uow.logs.append(lint.id, 0, b"lint output\n")
        await uow.commit()

    view = await storage.queries.get_build(build.id)
    assert view.summary.id == build.id
    assert view.summary.project_name == "demo"
    assert view.summary.status == "failed"
    assert view.stages == ["check", "build", "test"]
    assert [j.name for j in view.jobs] == ["lint", "compile", "unit", "e2e"]
    assert view.variables == ["A", "TOKEN"]
    assert view.problems == [{"severity": "warning", "message": "deprecated", "line": 2}]
    by_name = {j.name: j for j in view.jobs}
    assert by_name["lint"].log_size == 12
    assert by_name["compile"].log_size == 0
    assert by_name["compile"].tags == ["docker", "linux"]
    assert by_name["unit"].needs == ["compile"]
    assert by_name["lint"].needs is None
    assert by_name["e2e"].when == "manual"
    assert by_name["e2e"].allow_failure is True

    detail = await storage.queries.get_job(lint.id)
    assert (detail.status, detail.exit_code, detail.failure_reason) == (
        "failed",
        3,
        "script_failure",
    )
    assert (detail.attempt, detail.agent_id, detail.log_size) == (1, "agent-1", 12)
    assert (detail.started_at, detail.finished_at, detail.queued_at) == (at(1), at(2), T0)
    assert [(a.number, a.status, a.exit_code) for a in detail.attempts] == [(1, "failed", 3)]
    assert detail.attempts[0].started_at == at(1)
    with pytest.raises(NotFound):
        await storage.queries.get_build("nope")
    with pytest.raises(NotFound):
        await storage.queries.get_job("nope")


async def test_projects_pipelines_and_agents(storage: Storage) -> None:
    project, pipeline = await seed_pipeline(storage.uow_factory, "zeta")
    await seed_pipeline(storage.uow_factory, "alpha")
    assert [p.name for p in await storage.queries.list_projects()] == ["alpha", "zeta"]
    by_name = await storage.queries.get_project("zeta")
    assert by_name == await storage.queries.get_project(project.id)
    assert (by_name.repo_url, by_name.default_branch, by_name.created_at) == (
        "/srv/git/zeta",
        "main",
        T0,
    )
    assert [p.id for p in await storage.queries.list_pipelines(project.id)] == [pipeline.id]
    assert (await storage.queries.get_pipeline(pipeline.id)).enabled is True
    with pytest.raises(NotFound):
        await storage.queries.get_project("nope")
    with pytest.raises(NotFound):
        await storage.queries.get_pipeline("nope")

    busy = new_agent("busy", labels=("linux",), platform={"os": "linux"})
    idle = new_agent("idle")
    build = new_build(pipeline, 1, [job("a", stage_index=0), job("b", stage_index=0)])
    async with storage.uow_factory() as uow:
        await uow.agents.add(busy)
        await uow.agents.add(idle)
        await uow.builds.add(build)
        for name in ("a", "b"):
            build.start_job(build.jobs[name].id, busy.id, at(1))
        await uow.builds.save(build)
        await uow.commit()
    agents = await storage.queries.list_agents()
    assert [(a.name, a.running_jobs) for a in agents] == [("busy", 2), ("idle", 0)]
    assert agents[0].labels == ["linux"]
    assert agents[0].platform == {"os": "linux"}
    assert (agents[0].status, agents[0].capacity, agents[0].embedded) == ("online", 2, False)
    assert agents[0].last_seen_at == T0
