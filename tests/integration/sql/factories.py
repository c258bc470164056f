"""Small builders of domain objects for the storage tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ferrous.application.ports import UnitOfWork
from ferrous.domain.agent import Agent
from ferrous.domain.build import Build, JobDefinition
from ferrous.domain.ids import new_id
from ferrous.domain.project import Pipeline, Project
from ferrous.domain.statuses import When

T0 = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def job(
    name: str,
    *,
    stage: str = "test",
    stage_index: int = 1,
    when: When = When.ON_SUCCESS,
    needs: tuple[str, ...] | None = None,
    tags: tuple[str, ...] = (),
    **fields: Any,
) -> tuple[JobDefinition, dict[str, Any]]:
    definition = JobDefinition(
        name=name,
        stage=stage,
        stage_index=stage_index,
        when=when,
        needs=needs,
        allow_failure=fields.pop("allow_failure", False),
        tags=tags,
        **fields,
    )
    spec = {"name": name, "variables": {"Z": "1", "B": "$Z", "AA": "2"}, "script": [name]}
    return definition, spec


async def seed_pipeline(
    uow_factory: Callable[[], UnitOfWork], name: str = "demo"
) -> tuple[Project, Pipeline]:
    project = Project.create(name=name, repo_url=f"/srv/git/{name}", default_branch="main", now=T0)
    pipeline = Pipeline.create(project_id=project.id, name="default", config_path=None, now=T0)
    async with uow_factory() as uow:
        await uow.projects.add(project)
        await uow.pipelines.add(pipeline)
        await uow.commit()
    return project, pipeline


def new_build(
    pipeline: Pipeline,
    number: int,
    jobs: list[tuple[JobDefinition, dict[str, Any]]] | None = None,
    *,
    now: datetime = T0,
    ref: str = "main",
    variables: dict[str, str] | None = None,
    problems: list[dict[str, Any]] | None = None,
) -> Build:
    return Build.create(
        project_id=pipeline.project_id,
        pipeline_id=pipeline.id,
        number=number,
        ref=ref,
        sha="0123456789abcdef0123456789abcdef01234567",
        source="push",
        variables=variables if variables is not None else {"DEPLOY": "no"},
        jobs=[job("build")] if jobs is None else jobs,
        problems=problems or [],
        now=now,
    )


async def store_build(uow_factory: Callable[[], UnitOfWork], build: Build) -> Build:
    async with uow_factory() as uow:
        await uow.builds.add(build)
        await uow.commit()
    return build


def new_agent(name: str = "runner-1", labels: tuple[str, ...] = (), **fields: Any) -> Agent:
    return Agent.register(
        name=name,
        token_hash=fields.pop("token_hash", new_id()),
        labels=frozenset(labels),
        capacity=fields.pop("capacity", 2),
        platform=fields.pop("platform", {"os": "linux", "arch": "amd64"}),
        now=fields.pop("now", T0),
        **fields,
    )


@dataclass(frozen=True)
class FixedClock:
    """A clock stopped at ``moment``."""

    moment: datetime

    def now(self) -> datetime:
        return self.moment


async def chunks(data: bytes) -> AsyncIterator[bytes]:
    """``data`` as an object store's input stream."""
    yield data
