"""Signing in, refreshing and signing out, through the bus on the in-memory adapters.

Every refusal of a sign-in is the same ``InvalidCredentials``; a refresh token works once
and its reuse revokes the whole session; logout stops the session's access tokens.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import argon2
import pytest
from argon2.profiles import CHEAPEST

from ferrous.application import commands as c
from ferrous.application.use_cases.register_agent import hash_token
from ferrous.domain.access import PrincipalKind, Role
from ferrous.domain.errors import InvalidCredentials, NotFound
from ferrous.domain.registration_token import TokenState
from ferrous.infrastructure.security.access_tokens import JwtAccessTokens
from tests.unit.application.conftest import T0
from tests.unit.application.identities import PASSWORD, Identities, identities


@pytest.fixture
def ids(tmp_path: Path) -> Identities:
    return identities(tmp_path)


async def test_a_sign_in_starts_a_session(ids: Identities) -> None:
    user = await ids.user("ada", Role.DEVELOPER)
    signed = await ids.login("ada")

    assert signed.expires_in == 15 * 60
    assert signed.refresh_token.startswith(f"frf_{signed.session_id}.")
    [session] = ids.store.sessions.values()
    assert (session.id, session.user_id) == (signed.session_id, user.id)
    assert session.refresh_hash == hash_token(signed.refresh_token) != signed.refresh_token
    assert session.expires_at == T0 + timedelta(days=30)
    assert signed.refresh_token not in repr(ids.store)

    principal = await ids.authenticator.principal(signed.access_token)
    assert (principal.kind, principal.id, principal.name) == (PrincipalKind.USER, user.id, "ada")
    assert (principal.role, principal.token_id) == (Role.DEVELOPER, session.id)
    found = await ids.authenticator.authenticate(signed.access_token)
    assert found.session_id == session.id


async def test_usernames_are_not_case_sensitive(ids: Identities) -> None:
    user = await ids.user("Ada")
    assert user.username == "ada"
    assert (await ids.login(" ADA ")).user_id == user.id


async def test_every_refused_sign_in_looks_the_same(ids: Identities) -> None:
    user = await ids.user("ada")
    await ids.user("root", Role.ADMIN)
    await ids.bus.handle(c.UpdateUser(user_id=user.id, active=False))
    await ids.user("bob")

    messages = set()
    for username, password in [
        ("ada", PASSWORD),  # deactivated
        ("bob", "wrong password"),
        ("nobody", PASSWORD),
        ("Not A Valid Name!", PASSWORD),
    ]:
        with pytest.raises(InvalidCredentials) as refused:
            await ids.login(username, password)
        messages.add(refused.value.message)
    assert messages == {"wrong username or password"}
    assert ids.store.sessions == {}


async def test_a_hash_of_weaker_parameters_is_replaced_at_sign_in(ids: Identities) -> None:
    user = await ids.user("ada")
    weaker = argon2.PasswordHasher(time_cost=1, memory_cost=8, parallelism=1, hash_len=8)
    ids.store.users[user.id].password_hash = weaker.hash(PASSWORD)
    version = ids.store.users[user.id].version

    await ids.login("ada")

    stored = ids.store.users[user.id]
    assert stored.version == version + 1
    current = argon2.PasswordHasher.from_parameters(CHEAPEST)
    assert stored.password_hash is not None
    assert not current.check_needs_rehash(stored.password_hash)
    assert current.verify(stored.password_hash, PASSWORD)
    await ids.login("ada")  # and the new hash works
    assert ids.store.users[user.id].version == version + 1


async def test_a_refresh_rotates_the_refresh_token(ids: Identities) -> None:
    await ids.user("ada")
    first = await ids.login()
    ids.clock.advance(minutes=5)

    second = await ids.bus.handle(c.RefreshSession(refresh_token=first.refresh_token))

    assert second.session_id == first.session_id
    assert second.refresh_token != first.refresh_token
    assert second.access_token != first.access_token
    session = ids.store.sessions[first.session_id]
    assert session.refresh_hash == hash_token(second.refresh_token)
    assert session.rotated_at == ids.clock.now()
    assert (await ids.authenticator.principal(second.access_token)).name == "ada"
    third = await ids.bus.handle(c.RefreshSession(refresh_token=second.refresh_token))
    assert third.session_id == first.session_id


async def test_reusing_a_rotated_refresh_token_revokes_the_session(ids: Identities) -> None:
    await ids.user("ada")
    first = await ids.login()
    second = await ids.bus.handle(c.RefreshSession(refresh_token=first.refresh_token))

    with pytest.raises(InvalidCredentials, match="used already"):
        await ids.bus.handle(c.RefreshSession(refresh_token=first.refresh_token))

    assert ids.store.sessions[first.session_id].state(ids.clock.now()) == TokenState.REVOKED
    with pytest.raises(InvalidCredentials, match="revoked"):  # the thief's and the owner's
        await ids.bus.handle(c.RefreshSession(refresh_token=second.refresh_token))
    for access in (first.access_token, second.access_token):
        with pytest.raises(InvalidCredentials):
            await ids.authenticator.principal(access)
    assert (await ids.login()).session_id != first.session_id  # signing in again works


@pytest.mark.parametrize(
    "token", ["frf_", "frf_nope.secret", "frf_no-secret", "fpt_abc", "", "garbage"]
)
async def test_what_is_not_a_refresh_token_is_refused(ids: Identities, token: str) -> None:
    with pytest.raises(InvalidCredentials):
        await ids.bus.handle(c.RefreshSession(refresh_token=token))


async def test_a_session_ends_at_its_expiry_and_with_its_user(ids: Identities) -> None:
    user = await ids.user("ada")
    await ids.user("root", Role.ADMIN)
    signed = await ids.login()
    ids.clock.advance(days=30)
    with pytest.raises(InvalidCredentials, match="expired"):
        await ids.bus.handle(c.RefreshSession(refresh_token=signed.refresh_token))

    signed = await ids.login()
    ids.store.users[user.id].active = False  # as an admin's change would, minus its revocation
    with pytest.raises(InvalidCredentials, match="deactivated"):
        await ids.bus.handle(c.RefreshSession(refresh_token=signed.refresh_token))
    with pytest.raises(InvalidCredentials):
        await ids.authenticator.principal(signed.access_token)


async def test_an_access_token_lasts_its_lifetime(ids: Identities) -> None:
    await ids.user("ada")
    signed = await ids.login()
    ids.clock.advance(minutes=14, seconds=59)
    await ids.authenticator.principal(signed.access_token)
    ids.clock.advance(seconds=1)
    with pytest.raises(InvalidCredentials, match="expired"):
        await ids.authenticator.principal(signed.access_token)


async def test_logout_stops_the_session_and_its_access_tokens(ids: Identities) -> None:
    user = await ids.user("ada")
    signed = await ids.login()
    other = await ids.login()

    await ids.bus.handle(c.Logout(user_id=user.id, session_id=signed.session_id))

    with pytest.raises(InvalidCredentials):
        await ids.authenticator.principal(signed.access_token)
    with pytest.raises(InvalidCredentials, match="revoked"):
        await ids.bus.handle(c.RefreshSession(refresh_token=signed.refresh_token))
    assert (await ids.authenticator.principal(other.access_token)).id == user.id
    await ids.bus.handle(c.Logout(user_id=user.id, session_id=signed.session_id))  # again: no-op
    with pytest.raises(NotFound):  # somebody else's session
        await ids.bus.handle(c.Logout(user_id="someone-else", session_id=other.session_id))


async def test_the_role_is_read_at_each_call_not_from_the_token(ids: Identities) -> None:
    user = await ids.user("ada", Role.ADMIN)
    await ids.user("root", Role.ADMIN)
    signed = await ids.login()
    await ids.bus.handle(c.UpdateUser(user_id=user.id, role=Role.VIEWER))
    assert (await ids.authenticator.principal(signed.access_token)).role == Role.VIEWER


async def test_an_access_token_of_another_installation_is_refused(ids: Identities) -> None:
    await ids.user("ada")
    signed = await ids.login()
    user = ids.store.users[signed.user_id]
    forged = JwtAccessTokens(b"x" * 32).issue(  # another key than KEY
        user_id=user.id,
        role="admin",
        session_id=signed.session_id,
        now=ids.clock.now(),
        ttl=timedelta(minutes=5),
    )
    with pytest.raises(InvalidCredentials):
        await ids.authenticator.principal(forged)
