"""Agent registration tokens: repository contract and read side on SQLite, PostgreSQL, memory.

The important property is the count: ``spend`` never lets more agents in than ``max_uses``,
however many register at once, and agrees with the domain's rule about what is usable.
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

import pytest

from ferrous.application import commands as c
from ferrous.application.dependencies import Dependencies
from ferrous.application.messagebus import MessageBus
from ferrous.application.ports import StaleState
from ferrous.application.use_cases.register_agent import hash_token
from ferrous.domain.errors import Conflict, InvalidCredentials, NotFound
from ferrous.domain.registration_token import RegistrationToken, TokenState
from ferrous.infrastructure.git.source_repository import GitSourceRepository
from tests.integration.sql.conftest import Storage
from tests.integration.sql.factories import T0, at


def new_token(secret: str = "frt_secret", **fields: Any) -> RegistrationToken:
    return RegistrationToken.issue(token_hash=hash_token(secret), now=T0, **fields)


async def store_token(storage: Storage, token: RegistrationToken) -> RegistrationToken:
    async with storage.uow_factory() as uow:
        await uow.registration_tokens.add(token)
        await uow.commit()
    return token


async def load(storage: Storage, token_id: str) -> RegistrationToken:
    async with storage.uow_factory() as uow:
        return await uow.registration_tokens.get(token_id)


class FixedClock:
    def now(self) -> Any:
        return at(10)


async def test_round_trip_spend_and_revoke(storage: Storage) -> None:
    token = await store_token(
        storage, new_token(description="rack 3", expires_at=at(3600), max_uses=3)
    )
    assert await load(storage, token.id) == token

    async with storage.uow_factory() as uow:
        spent = await uow.registration_tokens.spend(hash_token("frt_secret"), at(5))
        await uow.commit()
    assert (spent.id, spent.uses, spent.last_used_at) == (token.id, 1, at(5))
    stored = await load(storage, token.id)
    assert stored == dataclasses.replace(token, uses=1, last_used_at=at(5))
    assert stored.expires_at is not None
    assert stored.expires_at.utcoffset() is not None

    stored.revoke(at(6))
    stored.description = "retired"
    async with storage.uow_factory() as uow:
        await uow.registration_tokens.save(stored)
        await uow.commit()
    assert await load(storage, token.id) == stored


async def test_unknown_tokens_and_duplicates(storage: Storage) -> None:
    token = await store_token(storage, new_token())
    async with storage.uow_factory() as uow:
        with pytest.raises(NotFound):
            await uow.registration_tokens.get("nope")
        with pytest.raises(NotFound):
            await uow.registration_tokens.spend(hash_token("frt_other"), at(1))
        with pytest.raises(NotFound):
            await uow.registration_tokens.save(dataclasses.replace(token, id="nope"))
    async with storage.uow_factory() as uow:
        with pytest.raises(Conflict):
            await uow.registration_tokens.add(new_token())  # the same hash


@pytest.mark.parametrize(
    ("fields", "now", "state"),
    [
        ({"max_uses": 1, "uses": 1}, at(1), TokenState.USED_UP),
        ({"expires_at": at(60)}, at(60), TokenState.EXPIRED),
        ({"expires_at": at(60)}, at(59.999999), TokenState.ACTIVE),
        ({"revoked_at": at(1)}, at(2), TokenState.REVOKED),
        ({"max_uses": 2, "uses": 1}, at(1), TokenState.ACTIVE),
    ],
)
async def test_spend_agrees_with_the_domain_rule(
    storage: Storage, fields: dict[str, Any], now: Any, state: TokenState
) -> None:
    token = dataclasses.replace(new_token(), **fields)
    assert token.state(now) == state
    await store_token(storage, token)
    async with storage.uow_factory() as uow:
        if state == TokenState.ACTIVE:
            spent = await uow.registration_tokens.spend(token.token_hash, now)
            assert spent.uses == token.uses + 1
        else:
            with pytest.raises(InvalidCredentials, match=state.value.replace("_", " ")):
                await uow.registration_tokens.spend(token.token_hash, now)


async def test_a_rolled_back_spend_gives_the_use_back(storage: Storage) -> None:
    token = await store_token(storage, new_token(max_uses=1))
    async with storage.uow_factory() as uow:
        await uow.registration_tokens.spend(token.token_hash, at(1))
    assert (await load(storage, token.id)).uses == 0


async def test_a_revocation_saved_from_a_stale_read_keeps_later_uses(storage: Storage) -> None:
    token = await store_token(storage, new_token())
    read_earlier = await load(storage, token.id)
    async with storage.uow_factory() as uow:
        await uow.registration_tokens.spend(token.token_hash, at(1))
        await uow.commit()
    read_earlier.revoke(at(2))
    async with storage.uow_factory() as uow:
        await uow.registration_tokens.save(read_earlier)
        await uow.commit()

    stored = await load(storage, token.id)
    assert (stored.uses, stored.revoked_at) == (1, at(2))


async def test_of_two_units_of_work_spending_the_last_use_one_commits(storage: Storage) -> None:
    """Both spend before either commits: PostgreSQL makes the second wait and then refuses,
    SQLite serializes the writers, memory refuses the later commit (here the first's, as it
    sleeps before committing); one use is counted, never two."""
    token = await store_token(storage, new_token(max_uses=1))
    first_spent = asyncio.Event()

    async def spend(first: bool) -> str:
        try:
            async with storage.uow_factory() as uow:
                if not first:
                    await first_spent.wait()
                await uow.registration_tokens.spend(token.token_hash, at(1))
                if first:
                    first_spent.set()
                    await asyncio.sleep(0.2)  # the other one spends meanwhile (or waits)
                await uow.commit()
        except (InvalidCredentials, StaleState):
            return "refused"
        return "spent"

    outcomes = await asyncio.wait_for(asyncio.gather(spend(True), spend(False)), 30)
    assert sorted(outcomes) == ["refused", "spent"]
    assert (await load(storage, token.id)).uses == 1


@pytest.mark.parametrize(("max_uses", "admitted"), [(1, 1), (3, 3), (None, 6)])
async def test_racing_registrations_through_the_bus(
    storage: Storage, tmp_path: Path, max_uses: int | None, admitted: int
) -> None:
    token = await store_token(storage, new_token(max_uses=max_uses))
    bus = MessageBus(
        storage.uow_factory,
        Dependencies(clock=FixedClock(), sources=GitSourceRepository(tmp_path / "trees")),
    )

    async def register(n: int) -> str:
        try:
            await bus.handle(c.RegisterAgent(name=f"agent-{n}", registration_token="frt_secret"))
        except InvalidCredentials:
            return "refused"
        return "registered"

    outcomes = await asyncio.wait_for(asyncio.gather(*(register(n) for n in range(6))), 60)
    assert outcomes.count("registered") == admitted
    stored = await load(storage, token.id)
    assert (stored.uses, stored.last_used_at) == (admitted, at(10))
    assert len(await storage.queries.list_agents()) == admitted


async def test_the_listing_is_newest_first_and_has_no_secret(storage: Storage) -> None:
    older = await store_token(storage, new_token("frt_a", description="old"))
    newer = await store_token(
        storage, dataclasses.replace(new_token("frt_b", max_uses=2), created_at=at(1))
    )
    async with storage.uow_factory() as uow:
        await uow.registration_tokens.spend(newer.token_hash, at(2))
        await uow.commit()

    views = await storage.queries.list_registration_tokens()
    assert [(v.id, v.description, v.uses, v.max_uses) for v in views] == [
        (newer.id, "", 1, 2),
        (older.id, "old", 0, None),
    ]
    assert views[0].last_used_at == at(2)
    assert views[0].created_at == at(1)
    assert not any(hasattr(v, "token_hash") for v in views)
