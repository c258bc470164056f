"""Agent registration tokens through the bus on the in-memory adapters.

An admin creates a token (its secret is returned once, only its hash is stored), agents
register with it while it is usable, each registration counts one use, and revoking it
closes the door. The server-wide bootstrap path (``registration_token=None``) is unchanged.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from ferrous.application import commands as c
from ferrous.application.use_cases.register_agent import hash_token
from ferrous.domain.errors import Conflict, InvalidCredentials, InvalidValue, NotFound
from ferrous.domain.registration_token import RegistrationToken
from ferrous.infrastructure.memory import InMemoryStore
from ferrous.infrastructure.memory.repositories import InMemoryAgentRepository

from .conftest import T0, World


async def create(world: World, **fields: Any) -> tuple[RegistrationToken, str]:
    token, plain = await world.bus.handle(c.CreateRegistrationToken(**fields))
    return token, plain


async def register(world: World, plain: str, name: str = "builder") -> str:
    agent, _ = await world.bus.handle(c.RegisterAgent(name=name, registration_token=plain))
    return str(agent.id)


def stored(store: InMemoryStore, token: RegistrationToken) -> RegistrationToken:
    return store.registration_tokens[token.id]


async def test_create_returns_the_secret_once_and_stores_its_hash(world: World) -> None:
    token, plain = await create(world, description="rack 3", max_uses=5)

    assert plain.startswith("frt_")
    assert len(plain) > 40
    kept = stored(world.store, token)
    assert kept.token_hash == hash_token(plain) != plain
    assert plain not in repr(world.store)
    assert (kept.description, kept.max_uses, kept.uses, kept.created_at) == ("rack 3", 5, 0, T0)
    _, other = await create(world)
    assert other != plain


async def test_expiry_is_given_relative_or_absolute_but_not_both(world: World) -> None:
    relative, _ = await create(world, expires_in=timedelta(days=7))
    absolute, _ = await create(world, expires_at=T0 + timedelta(hours=2))

    assert relative.expires_at == T0 + timedelta(days=7)
    assert absolute.expires_at == T0 + timedelta(hours=2)
    with pytest.raises(InvalidValue, match="not both"):
        await create(world, expires_in=timedelta(days=1), expires_at=T0 + timedelta(days=1))
    with pytest.raises(InvalidValue, match="not in the future"):
        await create(world, expires_in=timedelta(0))
    assert len(world.store.registration_tokens) == 2


async def test_registering_with_a_token_counts_one_use(world: World) -> None:
    token, plain = await create(world)
    world.clock.advance(minutes=5)
    agent_id = await register(world, plain)

    assert agent_id in world.store.agents
    kept = stored(world.store, token)
    assert (kept.uses, kept.last_used_at) == (1, T0 + timedelta(minutes=5))
    assert world.kinds() == ["AgentRegistered"]


async def test_an_unknown_token_registers_nobody(world: World) -> None:
    await create(world)
    with pytest.raises(InvalidCredentials, match="wrong agent registration token"):
        await register(world, "frt_guessed")

    assert world.store.agents == {}
    assert world.kinds() == []


async def test_a_max_uses_token_admits_exactly_that_many_agents(world: World) -> None:
    token, plain = await create(world, max_uses=2)
    await register(world, plain, "one")
    await register(world, plain, "two")
    with pytest.raises(InvalidCredentials, match="used up"):
        await register(world, plain, "three")

    assert sorted(a.name for a in world.store.agents.values()) == ["one", "two"]
    assert stored(world.store, token).uses == 2


async def test_an_expired_token_is_refused(world: World) -> None:
    _, plain = await create(world, expires_in=timedelta(hours=1))
    await register(world, plain, "early")
    world.clock.advance(hours=1)
    with pytest.raises(InvalidCredentials, match="expired"):
        await register(world, plain, "late")

    assert [a.name for a in world.store.agents.values()] == ["early"]


async def test_a_revoked_token_is_refused_but_its_agents_stay(world: World) -> None:
    token, plain = await create(world)
    agent_id = await register(world, plain)
    world.clock.advance(minutes=1)
    revoked = await world.bus.handle(c.RevokeRegistrationToken(token_id=token.id))
    world.clock.advance(minutes=1)
    again = await world.bus.handle(c.RevokeRegistrationToken(token_id=token.id))

    assert revoked.revoked_at == again.revoked_at == T0 + timedelta(minutes=1)
    assert stored(world.store, token).uses == 1  # the revocation kept the count
    with pytest.raises(InvalidCredentials, match="revoked"):
        await register(world, plain, "after")
    assert list(world.store.agents) == [agent_id]


async def test_revoking_an_unknown_token_is_not_found(world: World) -> None:
    with pytest.raises(NotFound):
        await world.bus.handle(c.RevokeRegistrationToken(token_id="nope"))


async def test_a_registration_that_fails_gives_the_use_back(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    token, plain = await create(world, max_uses=1)

    async def refuse(self: InMemoryAgentRepository, agent: object) -> None:
        raise Conflict("no room")

    with monkeypatch.context() as patched:
        patched.setattr(InMemoryAgentRepository, "add", refuse)
        with pytest.raises(Conflict):
            await register(world, plain)

    assert stored(world.store, token).uses == 0
    await register(world, plain)  # the one use is still there
    assert stored(world.store, token).uses == 1


async def test_the_bootstrap_path_spends_no_token(world: World) -> None:
    token, _ = await create(world, max_uses=1)
    await world.bus.handle(c.RegisterAgent(name="embedded", embedded=True))

    assert stored(world.store, token).uses == 0
    assert [a.name for a in world.store.agents.values()] == ["embedded"]
