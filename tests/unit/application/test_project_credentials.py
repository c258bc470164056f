"""Projects' repository credentials: sealed at rest, checked against the URL, given to the
agent that holds a job's lease and to nobody else."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from ferrous.application import commands as c
from ferrous.application.dependencies import Dependencies
from ferrous.application.messagebus import MessageBus
from ferrous.application.project_credentials import seal, unseal
from ferrous.domain.errors import ConfigInvalid, InvalidValue, StorageError
from ferrous.domain.project import Project
from ferrous.domain.repo_credentials import CredentialKind, RepoCredentials
from ferrous.infrastructure.git.source_repository import GitSourceRepository
from ferrous.infrastructure.memory import InMemoryStore, PlaintextSecretBox, memory_uow_factory
from ferrous.infrastructure.security.secret_box import AesGcmSecretBox, generate_key, load_keys
from tests.unit.application.conftest import LEASE_TIMEOUT, SERVER_URL, FakeClock, World

TOKEN = RepoCredentials(kind=CredentialKind.HTTPS_TOKEN, token="glpat-s3cr3t")
KEY = RepoCredentials(
    kind=CredentialKind.SSH_KEY,
    private_key="-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----",
)
HTTPS = "https://git.example.com/ci/app.git"
T0 = datetime(2025, 1, 31, 12, tzinfo=UTC)


@pytest.fixture
def bus(store: InMemoryStore, clock: FakeClock, tmp_path: Path) -> MessageBus:
    deps = Dependencies(
        clock=clock,
        sources=GitSourceRepository(tmp_path / "trees"),
        secret_box=PlaintextSecretBox(),
        lease_timeout=LEASE_TIMEOUT,
        server_url=SERVER_URL,
    )
    return MessageBus(memory_uow_factory(store), deps)


async def test_credentials_are_stored_sealed(world: World) -> None:
    project = await world.bus.handle(c.CreateProject(name="app", repo_url=HTTPS, credentials=TOKEN))

    stored = world.store.projects[project.id]
    assert stored.credentials is not None
    assert stored.credentials.kind is CredentialKind.HTTPS_TOKEN
    assert "s3cr3t" not in stored.credentials.sealed
    assert "s3cr3t" not in repr(stored)
    assert unseal(stored, PlaintextSecretBox()) == TOKEN


async def test_credentials_must_fit_the_url(world: World) -> None:
    with pytest.raises(InvalidValue, match="ssh repository URL"):
        await world.bus.handle(c.CreateProject(name="app", repo_url=HTTPS, credentials=KEY))
    with pytest.raises(InvalidValue, match="http"):
        await world.bus.handle(
            c.CreateProject(name="app", repo_url="git@example.com:ci/app.git", credentials=TOKEN)
        )
    project = await world.bus.handle(c.CreateProject(name="app", repo_url=HTTPS, credentials=TOKEN))
    with pytest.raises(InvalidValue, match="http"):  # the kept token does not fit ssh
        await world.bus.handle(
            c.UpdateProject(project_id=project.id, repo_url="ssh://git@example.com/ci/app.git")
        )
    await world.bus.handle(
        c.UpdateProject(
            project_id=project.id, repo_url="ssh://git@example.com/ci/app.git", credentials=KEY
        )
    )
    assert unseal(world.store.projects[project.id], PlaintextSecretBox()) == KEY
    await world.bus.handle(c.UpdateProject(project_id=project.id, credentials=RepoCredentials()))
    assert world.store.projects[project.id].credentials is None


def test_without_a_secret_box_projects_cannot_hold_credentials() -> None:
    project = Project.create(name="app", repo_url=HTTPS, default_branch="main", now=T0)
    seal(RepoCredentials(), project, None)
    assert project.credentials is None
    with pytest.raises(ConfigInvalid, match="secret box"):
        seal(TOKEN, project, None)


def test_sealed_credentials_open_for_their_own_project_only() -> None:
    box = AesGcmSecretBox(load_keys(generate_key(), Path("/nonexistent")))
    project = Project.create(name="app", repo_url=HTTPS, default_branch="main", now=T0)
    other = Project.create(name="other", repo_url=HTTPS, default_branch="main", now=T0)
    seal(TOKEN, project, box)
    assert project.credentials is not None
    assert "s3cr3t" not in project.credentials.sealed

    other.credentials = project.credentials  # a row copied by someone with database access

    assert unseal(project, box) == TOKEN
    with pytest.raises(StorageError, match="copied from another owner"):
        unseal(other, box)


async def test_the_claimed_job_carries_the_credentials(world: World) -> None:
    pipeline_id = await world.project()
    project_id = world.store.pipelines[pipeline_id].project_id
    project = world.store.projects[project_id]  # a local repository: set them behind its back
    project.repo_url = HTTPS
    seal(TOKEN, project, PlaintextSecretBox())
    project.repo_url = world.repo.url
    await world.trigger(pipeline_id)
    agent = await world.agent()

    payload = await world.claim(agent)

    assert payload is not None
    assert payload["credentials"] == {
        "kind": "https_token",
        "username": "",
        "token": "glpat-s3cr3t",
    }
    assert RepoCredentials.from_json(payload["credentials"]) == TOKEN
