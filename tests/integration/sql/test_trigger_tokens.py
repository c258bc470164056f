"""Pipeline trigger tokens: repository contract and read side on SQLite, PostgreSQL, memory.

``use`` must agree with the domain's rule about what is usable, never turn back a
revocation (nor a revocation a use), and the listing never shows a hash.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from ferrous.application.use_cases.register_agent import hash_token
from ferrous.domain.errors import Conflict, InvalidCredentials, NotFound
from ferrous.domain.registration_token import TokenState
from ferrous.domain.trigger_token import TriggerToken
from tests.integration.sql.conftest import Storage
from tests.integration.sql.factories import T0, at, seed_pipeline


def new_token(project_id: str, secret: str = "ftt_secret", **fields: Any) -> TriggerToken:
    return TriggerToken.issue(
        project_id=project_id, token_hash=hash_token(secret), now=T0, **fields
    )


async def store_token(storage: Storage, token: TriggerToken) -> TriggerToken:
    async with storage.uow_factory() as uow:
        await uow.trigger_tokens.add(token)
        await uow.commit()
    return token


async def load(storage: Storage, token_id: str) -> TriggerToken:
    async with storage.uow_factory() as uow:
        return await uow.trigger_tokens.get(token_id)


async def test_round_trip_use_and_revoke(storage: Storage) -> None:
    project, _ = await seed_pipeline(storage.uow_factory)
    token = await store_token(
        storage, new_token(project.id, description="deploy", expires_at=at(3600))
    )
    assert await load(storage, token.id) == token

    async with storage.uow_factory() as uow:
        used = await uow.trigger_tokens.use(hash_token("ftt_secret"), at(5))
        await uow.commit()
    assert (used.id, used.last_used_at) == (token.id, at(5))
    stored = await load(storage, token.id)
    assert stored == dataclasses.replace(token, last_used_at=at(5))
    assert stored.expires_at is not None
    assert stored.expires_at.utcoffset() is not None

    stored.revoke(at(6))
    stored.description = "retired"
    async with storage.uow_factory() as uow:
        await uow.trigger_tokens.save(stored)
        await uow.commit()
    assert await load(storage, token.id) == stored


async def test_unknown_tokens_and_duplicates(storage: Storage) -> None:
    project, _ = await seed_pipeline(storage.uow_factory)
    token = await store_token(storage, new_token(project.id))
    async with storage.uow_factory() as uow:
        with pytest.raises(NotFound):
            await uow.trigger_tokens.get("nope")
        with pytest.raises(NotFound):
            await uow.trigger_tokens.use(hash_token("ftt_other"), at(1))
        with pytest.raises(NotFound):
            await uow.trigger_tokens.save(dataclasses.replace(token, id="nope"))
    with pytest.raises(Conflict):
        await store_token(storage, new_token(project.id))  # the same hash


@pytest.mark.parametrize(
    ("fields", "now", "state"),
    [
        ({"expires_at": at(60)}, at(60), TokenState.EXPIRED),
        ({"expires_at": at(60)}, at(59.999999), TokenState.ACTIVE),
        ({"revoked_at": at(1)}, at(2), TokenState.REVOKED),
        ({}, at(10**8), TokenState.ACTIVE),
    ],
)
async def test_use_agrees_with_the_domain_rule(
    storage: Storage, fields: dict[str, Any], now: Any, state: TokenState
) -> None:
    project, _ = await seed_pipeline(storage.uow_factory)
    token = dataclasses.replace(new_token(project.id), **fields)
    assert token.state(now) == state
    await store_token(storage, token)
    async with storage.uow_factory() as uow:
        if state == TokenState.ACTIVE:
            assert (await uow.trigger_tokens.use(token.token_hash, now)).last_used_at == now
        else:
            with pytest.raises(InvalidCredentials, match=state.value):
                await uow.trigger_tokens.use(token.token_hash, now)


async def test_a_rolled_back_use_and_a_stale_revocation_keep_the_other(storage: Storage) -> None:
    project, _ = await seed_pipeline(storage.uow_factory)
    token = await store_token(storage, new_token(project.id))
    async with storage.uow_factory() as uow:
        await uow.trigger_tokens.use(token.token_hash, at(1))  # no commit
    assert (await load(storage, token.id)).last_used_at is None

    read_earlier = await load(storage, token.id)
    async with storage.uow_factory() as uow:
        await uow.trigger_tokens.use(token.token_hash, at(2))
        await uow.commit()
    read_earlier.revoke(at(3))
    async with storage.uow_factory() as uow:
        await uow.trigger_tokens.save(read_earlier)
        await uow.commit()
    stored = await load(storage, token.id)
    assert (stored.last_used_at, stored.revoked_at) == (at(2), at(3))


async def test_the_listing_is_the_project_s_newest_first_without_hashes(storage: Storage) -> None:
    project, _ = await seed_pipeline(storage.uow_factory)
    other, _ = await seed_pipeline(storage.uow_factory, name="other")
    older = await store_token(storage, new_token(project.id, "ftt_a", description="old"))
    newer = await store_token(
        storage, dataclasses.replace(new_token(project.id, "ftt_b"), created_at=at(1))
    )
    await store_token(storage, new_token(other.id, "ftt_c"))
    async with storage.uow_factory() as uow:
        await uow.trigger_tokens.use(newer.token_hash, at(2))
        await uow.commit()

    views = await storage.queries.list_trigger_tokens(project.id)
    assert [(v.id, v.description, v.last_used_at) for v in views] == [
        (newer.id, "", at(2)),
        (older.id, "old", None),
    ]
    assert views[0].created_at == at(1)
    assert not any(hasattr(v, "token_hash") for v in views)
    assert await storage.queries.list_trigger_tokens("nope") == []
