"""Secret variables through the bus on the in-memory adapters, sealed by a real AES-GCM box.

Set (create or replace) and delete, for a project and for the instance; what a claimed job
gets: instance variables, the project's over them, protected ones only on protected refs,
a trigger's variable over a secret, and the values its agent must mask; and a key rotation
that keeps every stored secret readable, then reseals them under the new key.
"""

from __future__ import annotations

import secrets as random
from pathlib import Path
from typing import Any

import pytest

from ferrous.application import commands as c
from ferrous.application.dependencies import Dependencies
from ferrous.application.messagebus import MessageBus
from ferrous.application.secret_variables import build_is_protected, job_secrets, open_value
from ferrous.domain.errors import InvalidValue, NotFound
from ferrous.domain.repo_credentials import CredentialKind, RepoCredentials
from ferrous.domain.secret_variable import SecretVariable
from ferrous.infrastructure.git.source_repository import GitSourceRepository
from ferrous.infrastructure.memory import InMemoryStore, memory_uow_factory
from ferrous.infrastructure.security.secret_box import AesGcmSecretBox, KeyRing, SecretUnreadable

from .conftest import LEASE_TIMEOUT, SERVER_URL, T0, FakeClock, World

DEPLOY_KEY = "dk_live_7f3a9c2e5b1d4f8a0c6e2b9d7f1a3c5e"
SINGLE_STAGE = "deploy:\n  script: [./deploy]\n"


def key() -> bytes:
    return random.token_bytes(32)


@pytest.fixture
def first_key() -> bytes:
    return key()


@pytest.fixture
def box(first_key: bytes) -> AesGcmSecretBox:
    return AesGcmSecretBox(KeyRing([first_key]))


@pytest.fixture
def bus(store: InMemoryStore, clock: FakeClock, tmp_path: Path, box: AesGcmSecretBox) -> MessageBus:
    deps = Dependencies(
        clock=clock,
        sources=GitSourceRepository(tmp_path / "trees"),
        secret_box=box,
        lease_timeout=LEASE_TIMEOUT,
        server_url=SERVER_URL,
    )
    return MessageBus(memory_uow_factory(store), deps)


async def set_secret(world: World, project: str | None, name: str, value: str, **flags: Any) -> Any:
    return await world.bus.handle(
        c.SetSecretVariable(project_id=project, name=name, value=value, **flags)
    )


def stored(world: World, project: str | None, name: str) -> SecretVariable:
    [found] = [
        s
        for s in world.store.secret_variables.values()
        if (s.project_id, s.name) == (project, name)
    ]
    return found


async def project_of(world: World, pipeline: str = SINGLE_STAGE) -> tuple[str, str]:
    pipeline_id = await world.project(pipeline)
    return world.store.pipelines[pipeline_id].project_id, pipeline_id


async def claimed(world: World, pipeline_id: str, **trigger: Any) -> dict[str, Any]:
    await world.trigger(pipeline_id, **trigger)
    payload = await world.claim(await world.agent(name=f"agent-{len(world.store.agents)}"))
    assert payload is not None
    return payload


async def test_set_seals_the_value_and_replaces_it_by_name(
    world: World, box: AesGcmSecretBox
) -> None:
    project, _ = await project_of(world)
    secret, created = await set_secret(world, project, "DEPLOY_KEY", DEPLOY_KEY, protected=True)
    assert created
    kept = stored(world, project, "DEPLOY_KEY")
    assert kept.sealed.startswith("v1:")
    assert DEPLOY_KEY not in repr(world.store)
    assert open_value(kept, box) == DEPLOY_KEY
    assert (kept.protected, kept.masked, kept.created_at) == (True, True, T0)

    world.clock.advance(minutes=5)
    again, created = await set_secret(world, project, "DEPLOY_KEY", "another-value", masked=False)
    assert not created
    kept = stored(world, project, "DEPLOY_KEY")
    assert (again.id, kept.id) == (secret.id, secret.id)
    assert open_value(kept, box) == "another-value"
    assert (kept.protected, kept.masked, kept.created_at) == (False, False, T0)
    assert kept.updated_at > T0


async def test_a_sealed_value_opens_only_for_its_owner_and_name(
    world: World, box: AesGcmSecretBox
) -> None:
    project, _ = await project_of(world)
    await set_secret(world, project, "A_TOKEN", DEPLOY_KEY)
    await set_secret(world, None, "A_TOKEN", "instance-value")
    own = stored(world, project, "A_TOKEN")
    for other in (
        SecretVariable(**{**_fields(own), "name": "B_TOKEN"}),
        SecretVariable(**{**_fields(own), "project_id": None}),
    ):
        with pytest.raises(SecretUnreadable):
            open_value(other, box)


def _fields(secret: SecretVariable) -> dict[str, Any]:
    return {name: getattr(secret, name) for name in SecretVariable.__dataclass_fields__}


async def test_what_is_refused(world: World) -> None:
    project, _ = await project_of(world)
    with pytest.raises(InvalidValue, match="name"):
        await set_secret(world, project, "DEPLOY-KEY", DEPLOY_KEY)
    with pytest.raises(InvalidValue, match="at least 8") as short:
        await set_secret(world, project, "PIN", "1234")
    assert "1234" not in short.value.message
    with pytest.raises(InvalidValue, match="single line"):
        await set_secret(world, project, "PEM", "-----BEGIN KEY-----\nabc\n-----END KEY-----")
    with pytest.raises(NotFound):
        await set_secret(world, "no-such-project", "DEPLOY_KEY", DEPLOY_KEY)
    assert world.store.secret_variables == {}
    await set_secret(world, project, "PEM", "-----BEGIN KEY-----\nabc\n", masked=False)


async def test_delete(world: World) -> None:
    project, _ = await project_of(world)
    await set_secret(world, project, "DEPLOY_KEY", DEPLOY_KEY)
    await set_secret(world, None, "DEPLOY_KEY", DEPLOY_KEY)
    await world.bus.handle(c.DeleteSecretVariable(project_id=project, name="DEPLOY_KEY"))
    assert [(s.project_id, s.name) for s in world.store.secret_variables.values()] == [
        (None, "DEPLOY_KEY")
    ]
    with pytest.raises(NotFound):
        await world.bus.handle(c.DeleteSecretVariable(project_id=project, name="DEPLOY_KEY"))


async def test_a_job_gets_the_instance_s_then_the_project_s_and_masks_the_masked(
    world: World,
) -> None:
    project, pipeline_id = await project_of(world)
    await set_secret(world, None, "REGISTRY_TOKEN", "instance-registry-token")
    await set_secret(world, None, "SHARED", "instance-shared-value")
    await set_secret(world, project, "SHARED", "project-shared-value")
    await set_secret(world, project, "PLAIN", "not-masked", masked=False)

    payload = await claimed(world, pipeline_id)

    variables = payload["variables"]
    assert variables["REGISTRY_TOKEN"] == "instance-registry-token"
    assert variables["SHARED"] == "project-shared-value"
    assert variables["PLAIN"] == "not-masked"
    assert variables["CI_JOB_ID"] == payload["job_id"]  # the per-run values are all there
    assert variables["CI_COMMIT_REF_PROTECTED"] == "true"  # main, the default branch
    assert sorted(payload["mask"]) == ["instance-registry-token", "project-shared-value"]
    assert "not-masked" not in payload["spec"]["variables"].values()


async def test_protected_secrets_only_on_tags_and_the_default_branch(world: World) -> None:
    project, pipeline_id = await project_of(world)
    await set_secret(world, project, "DEPLOY_KEY", DEPLOY_KEY, protected=True)
    await set_secret(world, project, "LINT_TOKEN", "lint-token-value")
    world.repo.git("tag", "v1.0")
    world.repo.git("checkout", "-q", "-b", "feature")
    world.repo.commit({"feature.txt": "x\n"})

    cases = {"main": True, "v1.0": True, "feature": False}
    for ref, protected in cases.items():
        payload = await claimed(world, pipeline_id, ref=ref)
        assert world.build(payload["build_id"]).protected_ref is protected, ref
        assert ("DEPLOY_KEY" in payload["variables"]) is protected, ref
        assert (DEPLOY_KEY in payload["mask"]) is protected, ref
        assert payload["variables"]["LINT_TOKEN"] == "lint-token-value"
        assert payload["variables"]["CI_COMMIT_REF_PROTECTED"] == str(protected).lower()


async def test_a_commit_given_with_the_default_branch_s_name_must_be_its_head(
    world: World,
) -> None:
    project, pipeline_id = await project_of(world)
    await set_secret(world, project, "DEPLOY_KEY", DEPLOY_KEY, protected=True)
    old = world.repo.git("rev-parse", "HEAD")
    head = world.repo.commit({"next.txt": "x\n"})

    at_old = await claimed(world, pipeline_id, ref="main", sha=old)
    assert "DEPLOY_KEY" not in at_old["variables"]
    at_head = await claimed(world, pipeline_id, ref="main", sha=head)
    assert at_head["variables"]["DEPLOY_KEY"] == DEPLOY_KEY


async def test_a_trigger_variable_beats_a_secret_of_the_same_name(world: World) -> None:
    project, pipeline_id = await project_of(world)
    await set_secret(world, project, "DEPLOY_KEY", DEPLOY_KEY)
    payload = await claimed(world, pipeline_id, variables={"DEPLOY_KEY": "from-the-trigger"})
    assert "DEPLOY_KEY" not in payload["variables"]  # the spec's trigger value stays
    assert payload["spec"]["variables"]["DEPLOY_KEY"] == "from-the-trigger"
    assert DEPLOY_KEY not in str(payload)


def test_merge_requests_and_other_commits_are_never_protected() -> None:
    fields: dict[str, Any] = {"branch": "main", "tag": None, "default_branch": "main"}
    assert build_is_protected(**fields, source="push", by_ref=True)
    assert not build_is_protected(**fields, source="push", by_ref=False)
    assert not build_is_protected(**fields, source="merge_request_event", by_ref=True)


async def test_the_repository_credentials_are_masked_too(
    world: World, box: AesGcmSecretBox
) -> None:
    project, pipeline_id = await project_of(world)
    await set_secret(world, project, "DEPLOY_KEY", DEPLOY_KEY)
    build = await world.trigger(pipeline_id)
    credentials = RepoCredentials(kind=CredentialKind.HTTPS_TOKEN, token="ghp_repository_token")
    async with memory_uow_factory(world.store)() as uow:
        secrets = await job_secrets(uow, box, build, credentials)
    assert secrets.mask == (DEPLOY_KEY, "ghp_repository_token")
    assert "ghp_repository_token" not in secrets.variables.values()


async def test_a_rotated_key_still_opens_old_secrets_and_reseal_moves_them(
    world: World, box: AesGcmSecretBox, first_key: bytes
) -> None:
    project, pipeline_id = await project_of(world)
    await set_secret(world, project, "DEPLOY_KEY", DEPLOY_KEY, protected=True)
    await set_secret(world, None, "REGISTRY_TOKEN", "instance-registry-token")
    old_id = box.keys.current_id
    sealed_before = {s.id: s.sealed for s in world.store.secret_variables.values()}

    second_key = key()
    box.keys = KeyRing([second_key, first_key])  # a rotation: the new key in front
    new_id = box.keys.current_id
    payload = await claimed(world, pipeline_id)
    assert payload["variables"]["DEPLOY_KEY"] == DEPLOY_KEY  # sealed with the old key

    count = await world.bus.handle(c.ResealSecrets(project_ids=(project,)))
    assert count == 2
    for secret in world.store.secret_variables.values():
        assert AesGcmSecretBox.key_id_of(secret.sealed) == new_id != old_id
        assert secret.sealed != sealed_before[secret.id]

    box.keys = KeyRing([second_key])  # the old key removed
    payload = await claimed(world, pipeline_id)
    assert payload["variables"]["DEPLOY_KEY"] == DEPLOY_KEY
    assert payload["variables"]["REGISTRY_TOKEN"] == "instance-registry-token"


async def test_reseal_stops_before_writing_when_a_value_does_not_open(
    world: World, box: AesGcmSecretBox
) -> None:
    project, _ = await project_of(world)
    await set_secret(world, project, "A_TOKEN", DEPLOY_KEY)
    await set_secret(world, project, "B_TOKEN", DEPLOY_KEY)
    before = {s.id: s.sealed for s in world.store.secret_variables.values()}
    box.keys = KeyRing([key()])  # the key that sealed them is lost
    with pytest.raises(SecretUnreadable):
        await world.bus.handle(c.ResealSecrets(project_ids=(project,)))
    assert {s.id: s.sealed for s in world.store.secret_variables.values()} == before
