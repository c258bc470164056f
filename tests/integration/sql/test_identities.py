"""Users, sessions and API tokens: repository contract and read side on SQLite,
PostgreSQL and memory.

Saves are compare-and-sets; a demotion locks the admins so that two admins demoting each
other at once leave one; of two refreshes with one refresh token one rotates it and the
other revokes the session; a token's use never undoes its revocation; listings hold no hash.
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

import pytest
from argon2.profiles import CHEAPEST

from ferrous.application import commands as c
from ferrous.application.dependencies import Dependencies
from ferrous.application.identity_queries import IdentityQueries
from ferrous.application.messagebus import MessageBus
from ferrous.application.ports import StaleState
from ferrous.application.use_cases.sign_in import SignedIn
from ferrous.domain.access import Role
from ferrous.domain.api_token import ApiToken, ApiTokenKind
from ferrous.domain.errors import Conflict, NotFound
from ferrous.domain.ids import new_id
from ferrous.domain.registration_token import TokenState
from ferrous.domain.session import Session
from ferrous.domain.user import User
from ferrous.infrastructure.git.source_repository import GitSourceRepository
from ferrous.infrastructure.memory import InMemoryIdentityQueries
from ferrous.infrastructure.security.access_tokens import JwtAccessTokens
from ferrous.infrastructure.security.passwords import Argon2PasswordHasher
from ferrous.infrastructure.sql.identity_queries import SqlIdentityQueries
from tests.integration.sql.conftest import Storage
from tests.integration.sql.factories import T0, at


class Clock:
    def __init__(self) -> None:
        self.current = T0

    def now(self) -> Any:
        return self.current


def identity_queries(storage: Storage) -> IdentityQueries:
    if storage.store is not None:
        return InMemoryIdentityQueries(storage.store)
    assert storage.engine is not None
    return SqlIdentityQueries(storage.engine)


def bus_of(storage: Storage, tmp_path: Path) -> MessageBus:
    deps = Dependencies(
        clock=Clock(),
        sources=GitSourceRepository(tmp_path / "trees"),
        passwords=Argon2PasswordHasher(CHEAPEST),
        access_tokens=JwtAccessTokens(b"k" * 32),
    )
    return MessageBus(storage.uow_factory, deps)


def new_user(username: str = "ada", role: Role = Role.DEVELOPER) -> User:
    return User.create(username=username, role=role, now=T0, password_hash="$argon2id$x")


async def add(storage: Storage, *records: User | ApiToken | Session) -> None:
    async with storage.uow_factory() as uow:
        for record in records:
            if isinstance(record, User):
                await uow.users.add(record)
            elif isinstance(record, ApiToken):
                await uow.api_tokens.add(record)
            else:
                await uow.sessions.add(record)
        await uow.commit()


def new_token(user: User, secret: str = "fpt_aaaaaaaaaaaaaaaa", **fields: Any) -> ApiToken:
    kind = ApiTokenKind.SERVICE if secret.startswith("fst_") else ApiTokenKind.PERSONAL
    return ApiToken.issue(
        user_id=user.id,
        name=fields.pop("name", "cli"),
        kind=kind,
        plain=secret,
        token_hash=secret.replace("_", "-") + "-hash",
        now=fields.pop("now", T0),
        **fields,
    )


def new_session(user: User, refresh_hash: str = "r1") -> Session:
    return Session.start(
        id=new_id(), user_id=user.id, refresh_hash=refresh_hash, now=T0, expires_at=at(86400)
    )


async def test_users_round_trip_and_save_with_their_version(storage: Storage) -> None:
    async with storage.uow_factory() as uow:
        assert not await uow.users.has_any()
    user = new_user()
    user.change_email("ada@example.com", T0)
    await add(storage, user)

    async with storage.uow_factory() as uow:
        assert await uow.users.has_any()
        loaded = await uow.users.get(user.id)
        assert loaded == user
        assert loaded.role is Role.DEVELOPER
        assert await uow.users.get_by_username("ada") == user
        for missing in (uow.users.get("nope"), uow.users.get_by_username("bob")):
            with pytest.raises(NotFound):
                await missing

    stale = dataclasses.replace(user)
    async with storage.uow_factory() as uow:
        loaded = await uow.users.get(user.id)
        loaded.change_role(Role.ADMIN, at(1))
        loaded.deactivate(at(1))
        await uow.users.save(loaded)
        assert loaded.version == 1
        await uow.commit()
    async with storage.uow_factory() as uow:
        stored = await uow.users.get(user.id)
        assert (stored.role, stored.active, stored.updated_at, stored.version) == (
            Role.ADMIN,
            False,
            at(1),
            1,
        )
        with pytest.raises(StaleState):
            await uow.users.save(stale)
        with pytest.raises(NotFound):
            await uow.users.save(dataclasses.replace(user, id="nope"))
    with pytest.raises(Conflict):
        await add(storage, new_user("ada"))


async def test_active_admins(storage: Storage) -> None:
    root, ada, gone = new_user("root", Role.ADMIN), new_user("ada", Role.ADMIN), new_user("x")
    gone.change_role(Role.ADMIN, T0)
    gone.deactivate(T0)
    await add(storage, root, ada, gone, new_user("bob"))
    async with storage.uow_factory() as uow:
        assert await uow.users.active_admins() == sorted([root.id, ada.id])
        assert await uow.users.active_admins(lock=True) == sorted([root.id, ada.id])


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_a_demotion_waits_for_another_one(storage: Storage) -> None:
    """The second demotion waits on the locked admins, then sees the first one's result."""
    root, ada = new_user("root", Role.ADMIN), new_user("ada", Role.ADMIN)
    await add(storage, root, ada)
    async with storage.uow_factory() as first:
        user = await first.users.get(root.id)
        assert len(await first.users.active_admins(lock=True)) == 2

        async def second() -> list[str]:
            async with storage.uow_factory() as uow:
                return await uow.users.active_admins(lock=True)

        waiting = asyncio.create_task(second())
        await asyncio.sleep(0.3)
        assert not waiting.done()
        user.change_role(Role.DEVELOPER, at(1))
        await first.users.save(user)
        await first.commit()
        assert await asyncio.wait_for(waiting, 10) == [ada.id]


async def test_two_admins_demoting_each_other_leave_one(storage: Storage, tmp_path: Path) -> None:
    root, ada = new_user("root", Role.ADMIN), new_user("ada", Role.ADMIN)
    await add(storage, root, ada)
    bus = bus_of(storage, tmp_path)
    results = await asyncio.gather(
        bus.handle(c.UpdateUser(user_id=root.id, role="developer")),
        bus.handle(c.UpdateUser(user_id=ada.id, active=False)),
        return_exceptions=True,
    )
    assert sorted(type(result).__name__ for result in results) == ["Conflict", "User"]
    admins = [u for u in await identity_queries(storage).list_users() if u.role == "admin"]
    assert [u.active for u in admins if u.active] == [True]


async def test_sessions_save_with_their_version(storage: Storage) -> None:
    user = new_user()
    session = new_session(user)
    await add(storage, user, session)
    async with storage.uow_factory() as uow:
        assert await uow.sessions.get(session.id) == session
        with pytest.raises(NotFound):
            await uow.sessions.get("nope")

    first, second = dataclasses.replace(session), dataclasses.replace(session)
    first.rotate("r2", at(1))
    second.revoke(at(2))
    async with storage.uow_factory() as uow:
        await uow.sessions.save(first)
        await uow.commit()
    async with storage.uow_factory() as uow:
        with pytest.raises(StaleState):
            await uow.sessions.save(second)
        stored = await uow.sessions.get(session.id)
    assert (stored.refresh_hash, stored.rotated_at, stored.revoked_at, stored.version) == (
        "r2",
        at(1),
        None,
        1,
    )
    with pytest.raises(Conflict):
        await add(storage, new_session(user, "r2"))


async def test_revoke_all_ends_the_users_open_sessions(storage: Storage) -> None:
    ada, bob = new_user("ada"), new_user("bob")
    mine, ended, theirs = new_session(ada, "r1"), new_session(ada, "r2"), new_session(bob, "r3")
    ended.revoke(T0)
    await add(storage, ada, bob, mine, ended, theirs)
    async with storage.uow_factory() as uow:
        assert await uow.sessions.revoke_all(ada.id, at(5)) == [mine.id]
        await uow.commit()
    async with storage.uow_factory() as uow:
        assert (await uow.sessions.get(mine.id)).revoked_at == at(5)
        assert (await uow.sessions.get(mine.id)).version == 1
        assert (await uow.sessions.get(ended.id)).revoked_at == T0
        assert (await uow.sessions.get(theirs.id)).revoked_at is None


async def test_two_refreshes_with_one_token_revoke_the_session(
    storage: Storage, tmp_path: Path
) -> None:
    bus = bus_of(storage, tmp_path)
    await bus.handle(c.CreateUser(username="ada", password="correct horse"))
    signed: SignedIn = await bus.handle(c.Login(username="ada", password="correct horse"))
    refresh = c.RefreshSession(refresh_token=signed.refresh_token)

    results = await asyncio.gather(bus.handle(refresh), bus.handle(refresh), return_exceptions=True)

    assert sorted(type(result).__name__ for result in results) == ["InvalidCredentials", "SignedIn"]
    async with storage.uow_factory() as uow:
        session = await uow.sessions.get(signed.session_id)
    assert session.state(T0) == TokenState.REVOKED


async def test_api_tokens_round_trip_and_stamp_their_uses(storage: Storage) -> None:
    user = new_user()
    token = new_token(user, expires_at=at(3600))
    service = new_token(
        user, "fst_bbbbbbbbbbbbbbbb", scopes=frozenset({"builds:read", "jobs:read"})
    )
    await add(storage, user, token, service)
    async with storage.uow_factory() as uow:
        assert await uow.api_tokens.get(token.id) == token
        assert await uow.api_tokens.get_by_hash(service.token_hash) == service
        for missing in (uow.api_tokens.get("nope"), uow.api_tokens.get_by_hash("nope")):
            with pytest.raises(NotFound):
                await missing
        with pytest.raises(NotFound):
            await uow.api_tokens.save(dataclasses.replace(token, id="nope"))
    with pytest.raises(Conflict):  # the same hash
        await add(storage, new_token(user))

    read_earlier = dataclasses.replace(token)
    async with storage.uow_factory() as uow:
        await uow.api_tokens.touch(token.id, at(10), unless_since=at(-50))
        await uow.commit()
    async with storage.uow_factory() as uow:  # within the minute: not stamped again
        await uow.api_tokens.touch(token.id, at(40), unless_since=at(-20))
        await uow.commit()
    read_earlier.revoke(at(50))
    async with storage.uow_factory() as uow:
        await uow.api_tokens.save(read_earlier)
        await uow.commit()
    async with storage.uow_factory() as uow:  # a use after the revocation keeps it
        await uow.api_tokens.touch(token.id, at(80), unless_since=at(20))
        await uow.commit()
    async with storage.uow_factory() as uow:
        stored = await uow.api_tokens.get(token.id)
    assert (stored.last_used_at, stored.revoked_at) == (at(80), at(50))


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_a_token_needs_its_user(storage: Storage) -> None:
    with pytest.raises(Conflict):
        await add(storage, new_token(new_user()))


async def test_the_listings_are_ordered_and_hold_no_hash(storage: Storage) -> None:
    ada, bob = new_user("ada"), new_user("bob", Role.ADMIN)
    older = new_token(ada, "fpt_1111111111111111")
    newer = new_token(ada, "fpt_2222222222222222", now=at(1), name="newer")
    bobs = new_token(bob, "fpt_3333333333333333")
    service = new_token(bob, "fst_4444444444444444", now=at(2), scopes=frozenset({"logs:read"}))
    await add(storage, bob, ada, older, newer, bobs, service)
    queries = identity_queries(storage)

    assert [u.username for u in await queries.list_users()] == ["ada", "bob"]
    assert (await queries.get_user("ADA")).id == ada.id
    assert (await queries.get_user(bob.id)).username == "bob"
    assert (await queries.get_user(bob.id)).role == "admin"
    with pytest.raises(NotFound):
        await queries.get_user("nobody")

    mine = await queries.list_api_tokens(user_id=ada.id, kind=ApiTokenKind.PERSONAL)
    assert [(t.id, t.name, t.prefix) for t in mine] == [
        (newer.id, "newer", "fpt_22222222"),
        (older.id, "cli", "fpt_11111111"),
    ]
    [view] = await queries.list_api_tokens(kind=ApiTokenKind.SERVICE)
    assert (view.id, view.user_id, view.kind, view.scopes) == (
        service.id,
        bob.id,
        "service",
        ["logs:read"],
    )
    assert len(await queries.list_api_tokens()) == 4
    everything = repr(await queries.list_api_tokens()) + repr(await queries.list_users())
    assert "hash" not in everything
