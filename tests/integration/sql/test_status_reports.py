"""Commit status reports on every backend: queued in the commit that changed a build (only
for projects with a forge, only when the status changed), superseded by newer ones, settled,
pruned; and projects' forge links stored and shown without their token."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from ferrous.application.ports import UnitOfWork
from ferrous.application.queries import Queries
from ferrous.domain.build import Build
from ferrous.domain.commit_status import (
    CommitState,
    CommitStatus,
    DueReport,
    ReportOutcome,
    ReportResult,
)
from ferrous.domain.forge import ForgeKind, ForgeLink
from ferrous.domain.project import Pipeline, Project
from tests.integration.sql.conftest import Storage
from tests.integration.sql.factories import T0, at, job, new_build, seed_pipeline, store_build

LINK = ForgeLink(kind=ForgeKind.GITLAB, api_url="http://127.0.0.1:9/api/v4", token="sealed:x")
SHA = "0123456789abcdef0123456789abcdef01234567"


def soon() -> datetime:
    """Reports are stamped with the wall clock at commit: all of them are due by then."""
    return datetime.now(UTC) + timedelta(minutes=1)


async def forge_pipeline(
    uow_factory: Callable[[], UnitOfWork], name: str = "app"
) -> tuple[Project, Pipeline]:
    project = Project.create(
        name=name, repo_url="https://gitlab.example.com/g/app.git", default_branch="main", now=T0
    )
    project.forge = LINK
    pipeline = Pipeline.create(project_id=project.id, name="nightly", config_path=None, now=T0)
    async with uow_factory() as uow:
        await uow.projects.add(project)
        await uow.pipelines.add(pipeline)
        await uow.commit()
    return project, pipeline


async def due(storage: Storage, now: datetime | None = None, limit: int = 100) -> list[DueReport]:
    async with storage.uow_factory() as uow:
        found = await uow.status_reports.due(now or soon(), limit)
        await uow.commit()
    return found


async def change(storage: Storage, build: Build, step: Callable[[Build], object]) -> Build:
    async with storage.uow_factory() as uow:
        loaded = await uow.builds.get(build.id)
        step(loaded)
        await uow.builds.save(loaded)
        await uow.commit()
    return loaded


async def test_a_new_build_queues_its_status_with_its_project_s_forge(storage: Storage) -> None:
    project, pipeline = await forge_pipeline(storage.uow_factory)
    _, plain = await seed_pipeline(storage.uow_factory, "plain")
    build = await store_build(storage.uow_factory, new_build(pipeline, 1, [job("a")]))
    await store_build(storage.uow_factory, new_build(plain, 1))  # no forge: no report

    [report] = await due(storage)

    assert report.project_id == project.id
    assert report.build_id == build.id
    assert report.status == CommitStatus(
        sha=SHA,
        ref="main",
        state=CommitState.PENDING,
        context="ferrous/nightly",
        description="Build #1 is pending",
        target_url="",
    )
    assert (report.attempts, report.repo_url, report.forge) == (0, project.repo_url, LINK)
    assert await due(storage, now=T0) == []  # queued at commit, not before


async def test_a_report_is_queued_only_when_the_status_changes(storage: Storage) -> None:
    _, pipeline = await forge_pipeline(storage.uow_factory)
    build = await store_build(
        storage.uow_factory, new_build(pipeline, 1, [job("a", stage_index=0), job("b")])
    )
    a, b = build.jobs["a"].id, build.jobs["b"].id

    await change(storage, build, lambda x: x.start_job(a, "agent", at(1)))
    await change(
        storage,
        build,
        lambda x: x.complete_job(a, attempt=1, exit_code=0, failure_reason=None, now=at(2)),
    )  # b queued: still running, nothing new to say
    await change(storage, build, lambda x: x.start_job(b, "agent", at(3)))
    await change(
        storage,
        build,
        lambda x: x.complete_job(b, attempt=1, exit_code=1, failure_reason=None, now=at(4)),
    )

    states = [r.status.state for r in await due(storage)]
    assert states == [CommitState.FAILED]  # the older ones were superseded


async def test_rolled_back_changes_queue_nothing(storage: Storage) -> None:
    _, pipeline = await forge_pipeline(storage.uow_factory)
    build = new_build(pipeline, 1, [job("a")])
    async with storage.uow_factory() as uow:
        await uow.builds.add(build)  # no commit
    assert await due(storage) == []


async def test_newer_reports_supersede_older_unsent_ones(storage: Storage) -> None:
    project, pipeline = await forge_pipeline(storage.uow_factory)
    first = await store_build(storage.uow_factory, new_build(pipeline, 1, [job("a")]))
    [pending] = await due(storage)
    await settle(storage, pending, outcome=None, next_attempt_at=soon() + timedelta(hours=1))
    second = await store_build(storage.uow_factory, new_build(pipeline, 2, [job("a")]))
    other, other_pipeline = await forge_pipeline(storage.uow_factory, "other")
    third = await store_build(storage.uow_factory, new_build(other_pipeline, 1, [job("a")]))

    found = await due(storage, now=soon() + timedelta(hours=2))

    # same sha and context in one project: only build 2's; another project's stays its own
    assert [(r.build_id, r.project_id) for r in found] == [
        (second.id, project.id),
        (third.id, other.id),
    ]
    assert first.id not in {r.build_id for r in await due(storage, soon() + timedelta(days=1))}


async def settle(storage: Storage, report: DueReport, **fields: object) -> None:
    now = datetime.now(UTC)
    values: dict[str, object] = {
        "report_id": report.id,
        "attempts": report.attempts + 1,
        "at": now,
        "outcome": ReportOutcome.SENT,
        **fields,
    }
    async with storage.uow_factory() as uow:
        await uow.status_reports.settle([ReportResult(**values)])  # type: ignore[arg-type]
        await uow.commit()


async def test_settled_reports_are_not_due_and_retries_come_back(storage: Storage) -> None:
    _, pipeline = await forge_pipeline(storage.uow_factory)
    await store_build(storage.uow_factory, new_build(pipeline, 1, [job("a")]))
    _, other = await forge_pipeline(storage.uow_factory, "other")
    await store_build(storage.uow_factory, new_build(other, 1, [job("a")]))
    sent, retried = await due(storage)
    later = soon() + timedelta(seconds=30)

    await settle(storage, sent, target_url="http://ci/builds/1")
    await settle(storage, retried, outcome=None, next_attempt_at=later, error="503")

    assert await due(storage) == []
    [again] = await due(storage, now=later)
    assert (again.id, again.attempts) == (retried.id, 1)
    await settle(storage, again, attempts=2, outcome=ReportOutcome.GIVEN_UP, error="401")
    assert await due(storage, now=later + timedelta(days=1)) == []


async def test_settled_reports_are_pruned(storage: Storage) -> None:
    _, pipeline = await forge_pipeline(storage.uow_factory)
    await store_build(storage.uow_factory, new_build(pipeline, 1, [job("a")]))
    _, other = await forge_pipeline(storage.uow_factory, "other")
    await store_build(storage.uow_factory, new_build(other, 1, [job("a")]))
    sent, unsent = await due(storage)
    await settle(storage, sent)

    async with storage.uow_factory() as uow:
        assert await uow.status_reports.prune(soon()) == 1
        await uow.commit()

    assert [r.id for r in await due(storage)] == [unsent.id]


async def test_forge_links_are_stored_and_shown_without_the_token(
    storage: Storage, queries: Queries
) -> None:
    project, _ = await forge_pipeline(storage.uow_factory)
    async with storage.uow_factory() as uow:
        stored = await uow.projects.get(project.id)
        assert stored.forge == LINK
        stored.forge = ForgeLink(kind=ForgeKind.GITEA, repo="o/r", token="sealed:y")
        await uow.projects.save(stored)
        await uow.commit()

    view = await queries.get_project(project.id)
    assert (view.forge, view.forge_api_url, view.forge_repo, view.forge_token_set) == (
        "gitea",
        "https://gitlab.example.com/api/v1",  # derived from the repository URL
        "o/r",
        True,
    )
    assert "sealed" not in repr(view)

    async with storage.uow_factory() as uow:
        stored = await uow.projects.get(project.id)
        stored.forge = None
        await uow.projects.save(stored)
        await uow.commit()
    view = await queries.get_project(project.id)
    assert (view.forge, view.forge_api_url, view.forge_token_set) == ("none", None, False)
