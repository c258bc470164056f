"""A project's forge link through the bus: set, changed field by field, removed; the token
sealed; what cannot work refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from ferrous.application import commands as c
from ferrous.application.dependencies import Dependencies
from ferrous.application.forge_settings import open_token
from ferrous.application.messagebus import MessageBus
from ferrous.domain.errors import InvalidValue
from ferrous.domain.forge import ForgeKind, ForgeLink, ForgeSettings
from ferrous.domain.project import Project
from ferrous.infrastructure.git.source_repository import GitSourceRepository
from ferrous.infrastructure.memory import InMemoryStore, PlaintextSecretBox, memory_uow_factory
from tests.unit.application.conftest import SERVER_URL, FakeClock

HTTPS = "https://gitlab.example.com/ci/app.git"
BOX = PlaintextSecretBox()


@pytest.fixture
def bus(store: InMemoryStore, clock: FakeClock, tmp_path: Path) -> MessageBus:
    deps = Dependencies(
        clock=clock,
        sources=GitSourceRepository(tmp_path / "trees"),
        secret_box=BOX,
        server_url=SERVER_URL,
    )
    return MessageBus(memory_uow_factory(store), deps)


async def create(bus: MessageBus, forge: ForgeSettings | None, url: str = HTTPS) -> Project:
    project: Project = await bus.handle(c.CreateProject(name="app", repo_url=url, forge=forge))
    return project


async def update(
    bus: MessageBus,
    project: Project,
    *,
    repo_url: str | None = None,
    forge: ForgeSettings | None = None,
) -> ForgeLink | None:
    command = c.UpdateProject(project_id=project.id, repo_url=repo_url, forge=forge)
    changed: Project = await bus.handle(command)
    return changed.forge


async def test_the_token_is_sealed_and_bound_to_its_project(
    bus: MessageBus, store: InMemoryStore
) -> None:
    project = await create(bus, ForgeSettings(kind=ForgeKind.GITLAB, token="glpat-s3cr3t"))

    link = store.projects[project.id].forge
    assert link is not None
    assert (link.kind, link.api_url, link.repo) == (ForgeKind.GITLAB, None, None)  # derived
    assert "s3cr3t" not in link.token
    assert "s3cr3t" not in repr(link)
    assert open_token(project.id, link, BOX) == "glpat-s3cr3t"


async def test_a_forge_needs_a_token(bus: MessageBus) -> None:
    with pytest.raises(InvalidValue, match="forge_token"):
        await create(bus, ForgeSettings(kind=ForgeKind.GITHUB))


async def test_what_cannot_be_derived_must_be_given(bus: MessageBus) -> None:
    with pytest.raises(InvalidValue, match="forge_api_url"):
        await create(bus, ForgeSettings(kind=ForgeKind.GITEA, token="t"), url="/srv/git/app")
    project = await create(
        bus,
        ForgeSettings(
            kind=ForgeKind.GITEA, api_url="http://127.0.0.1:3000/api/v1", repo="o/r", token="t"
        ),
        url="/srv/git/app",
    )
    assert project.forge is not None


async def test_only_what_is_given_changes(bus: MessageBus) -> None:
    project = await create(bus, ForgeSettings(kind=ForgeKind.GITLAB, token="one"))

    link = await update(bus, project, forge=ForgeSettings(repo="42"))
    assert link is not None
    assert (link.kind, link.repo) == (ForgeKind.GITLAB, "42")
    assert open_token(project.id, link, BOX) == "one"

    link = await update(bus, project, forge=ForgeSettings(token="two", api_url="https://gl/api/v4"))
    assert link is not None
    assert (link.repo, link.api_url) == ("42", "https://gl/api/v4")
    assert open_token(project.id, link, BOX) == "two"

    link = await update(bus, project, forge=ForgeSettings(api_url="", repo=""))
    assert link is not None
    assert (link.api_url, link.repo) == (None, None)

    assert await update(bus, project, forge=ForgeSettings(kind=ForgeKind.NONE)) is None


async def test_settings_without_a_kind_need_a_forge_first(bus: MessageBus) -> None:
    project = await create(bus, None)
    with pytest.raises(InvalidValue, match="give forge"):
        await update(bus, project, forge=ForgeSettings(repo="o/r"))


async def test_a_new_repository_url_must_still_derive(bus: MessageBus) -> None:
    project = await create(bus, ForgeSettings(kind=ForgeKind.GITLAB, token="t"))

    link = await update(bus, project, repo_url="git@gitlab.example.com:other/app.git")
    assert link is not None
    assert link.target("git@gitlab.example.com:other/app.git").repo == "other/app"
    with pytest.raises(InvalidValue, match="forge_api_url"):
        await update(bus, project, repo_url="/srv/git/app")


async def test_a_bad_token_text_is_refused(bus: MessageBus) -> None:
    with pytest.raises(InvalidValue, match="one line"):
        await create(bus, ForgeSettings(kind=ForgeKind.GITLAB, token="a\nb"))
