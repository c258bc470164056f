"""Projects' sealed credentials: stored, changed and removed on every backend; the read
side tells only their kind."""

from __future__ import annotations

import pytest

from ferrous.application.queries import Queries
from ferrous.domain.errors import NotFound
from ferrous.domain.project import Project
from ferrous.domain.repo_credentials import CredentialKind, SealedCredentials
from tests.integration.sql.conftest import Storage
from tests.integration.sql.factories import T0

SEALED = SealedCredentials(kind=CredentialKind.HTTPS_TOKEN, sealed="aes:opaque-ciphertext")


async def test_credentials_round_trip(storage: Storage, queries: Queries) -> None:
    project = Project.create(
        name="private",
        repo_url="https://git.example.com/ci/private.git",
        default_branch="main",
        now=T0,
        credentials=SEALED,
    )
    plain = Project.create(name="public", repo_url="/srv/public", default_branch="main", now=T0)
    async with storage.uow_factory() as uow:
        await uow.projects.add(project)
        await uow.projects.add(plain)
        await uow.commit()

    async with storage.uow_factory() as uow:
        stored = await uow.projects.get(project.id)
        assert stored.credentials == SEALED
        assert (await uow.projects.get(plain.id)).credentials is None
        stored.repo_url = "ssh://git@git.example.com/ci/private.git"
        stored.default_branch = "trunk"
        stored.credentials = SealedCredentials(kind=CredentialKind.SSH_KEY, sealed="aes:key")
        await uow.projects.save(stored)
        await uow.commit()

    async with storage.uow_factory() as uow:
        changed = await uow.projects.get_by_name("private")
        assert changed.repo_url == "ssh://git@git.example.com/ci/private.git"
        assert changed.default_branch == "trunk"
        assert changed.credentials == SealedCredentials(
            kind=CredentialKind.SSH_KEY, sealed="aes:key"
        )
        changed.credentials = None
        await uow.projects.save(changed)
        await uow.commit()

    async with storage.uow_factory() as uow:
        assert (await uow.projects.get(project.id)).credentials is None
    views = {view.name: view for view in await queries.list_projects()}
    assert views["private"].credentials_kind == "none"
    assert views["public"].credentials_kind == "none"


async def test_the_read_side_tells_the_kind_only(storage: Storage, queries: Queries) -> None:
    project = Project.create(
        name="private",
        repo_url="https://h/x.git",
        default_branch="main",
        now=T0,
        credentials=SEALED,
    )
    async with storage.uow_factory() as uow:
        await uow.projects.add(project)
        await uow.commit()

    view = await queries.get_project("private")

    assert view.credentials_kind == "https_token"
    assert "opaque" not in repr(view)


async def test_saving_an_unknown_project_is_not_found(storage: Storage) -> None:
    ghost = Project.create(name="ghost", repo_url="/x", default_branch="main", now=T0)
    async with storage.uow_factory() as uow:
        with pytest.raises(NotFound):
            await uow.projects.save(ghost)
