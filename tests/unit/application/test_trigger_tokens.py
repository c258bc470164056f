"""Pipeline trigger tokens through the bus on the in-memory adapters.

A maintainer creates a token of a project (the secret is returned once, its hash kept); an
external system starts builds of the project's default pipeline with it, as builds of
source ``trigger`` with its variables; every refusal is ``InvalidCredentials``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from ferrous.application import commands as c
from ferrous.application.use_cases.register_agent import hash_token
from ferrous.domain.build import Build
from ferrous.domain.errors import InvalidCredentials, InvalidValue, NotFound
from ferrous.domain.trigger_token import TriggerToken

from .conftest import T0, World


async def project_id(world: World, name: str = "demo") -> str:
    pipeline_id = await world.project(name=name)
    return world.store.pipelines[pipeline_id].project_id


async def create(world: World, project: str, **fields: Any) -> tuple[TriggerToken, str]:
    token, plain = await world.bus.handle(c.CreateTriggerToken(project_id=project, **fields))
    return token, plain


async def run(world: World, project: str, token: str, **fields: Any) -> Build:
    build: Build = await world.bus.handle(c.RunTrigger(project=project, token=token, **fields))
    return world.build(build.id)


async def test_create_returns_the_secret_once_and_stores_its_hash(world: World) -> None:
    project = await project_id(world)
    token, plain = await create(world, project, description="deploy", expires_in=timedelta(days=1))

    assert plain.startswith("ftt_")
    assert len(plain) > 40
    kept = world.store.trigger_tokens[token.id]
    assert kept.token_hash == hash_token(plain) != plain
    assert plain not in repr(world.store)
    assert (kept.project_id, kept.description, kept.expires_at) == (
        project,
        "deploy",
        T0 + timedelta(days=1),
    )
    with pytest.raises(InvalidValue, match="not both"):
        await create(world, project, expires_in=timedelta(days=1), expires_at=T0)
    with pytest.raises(NotFound):
        await create(world, "no-such-project")


async def test_a_trigger_builds_the_default_pipeline_with_its_variables(world: World) -> None:
    project = await project_id(world)
    token, plain = await create(world, project)
    world.clock.advance(minutes=5)

    build = await run(world, "demo", plain, ref="main", variables={"DEPLOY": "yes"})

    assert (build.source, build.ref, build.variables) == ("trigger", "main", {"DEPLOY": "yes"})
    assert build.project_id == project
    assert world.store.trigger_tokens[token.id].last_used_at == T0 + timedelta(minutes=5)
    by_id = await run(world, project, plain)  # the project by id, the default branch
    assert (by_id.ref, by_id.variables) == ("main", {})


@pytest.mark.parametrize("case", ["unknown", "other project", "revoked", "expired"])
async def test_every_refusal_is_invalid_credentials_and_builds_nothing(
    world: World, case: str
) -> None:
    project = await project_id(world)
    await project_id(world, name="other")
    token, plain = await create(world, project, expires_in=timedelta(hours=1))
    target = "other" if case == "other project" else "demo"
    if case == "unknown":
        plain = "ftt_guessed"
    elif case == "revoked":
        await world.bus.handle(c.RevokeTriggerToken(project_id=project, token_id=token.id))
    elif case == "expired":
        world.clock.advance(hours=1)

    with pytest.raises(InvalidCredentials):
        await run(world, target, plain)
    assert world.store.builds == {}
    assert world.store.trigger_tokens[token.id].last_used_at is None


async def test_a_trigger_refused_later_leaves_no_use(world: World) -> None:
    project = await project_id(world)
    token, plain = await create(world, project)
    with pytest.raises(NotFound):
        await run(world, "demo", plain, ref="no-such-branch")
    assert world.store.trigger_tokens[token.id].last_used_at is None


async def test_revoking_goes_through_the_token_s_project(world: World) -> None:
    project = await project_id(world)
    other = await project_id(world, name="other")
    token, _ = await create(world, project)
    with pytest.raises(NotFound):
        await world.bus.handle(c.RevokeTriggerToken(project_id=other, token_id=token.id))
    assert world.store.trigger_tokens[token.id].revoked_at is None

    world.clock.advance(minutes=1)
    await world.bus.handle(c.RevokeTriggerToken(project_id=project, token_id=token.id))
    world.clock.advance(minutes=1)
    await world.bus.handle(c.RevokeTriggerToken(project_id=project, token_id=token.id))
    assert world.store.trigger_tokens[token.id].revoked_at == T0 + timedelta(minutes=1)
