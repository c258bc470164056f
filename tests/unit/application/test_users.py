"""Admins add and change people through the bus on the in-memory adapters.

A generated password is returned once; names are unique without regard to case; there is
always an active admin left, even when two admins demote each other at once; a new password
or a deactivation ends the person's sessions.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ferrous.application import commands as c
from ferrous.application.ports import StaleState
from ferrous.domain.access import Role
from ferrous.domain.errors import Conflict, InvalidCredentials, InvalidValue, NotFound
from ferrous.domain.registration_token import TokenState
from tests.unit.application.conftest import T0
from tests.unit.application.identities import PASSWORD, Identities, identities


@pytest.fixture
def ids(tmp_path: Path) -> Identities:
    return identities(tmp_path)


async def test_a_new_user_without_a_password_gets_one_generated(ids: Identities) -> None:
    user, generated = await ids.bus.handle(
        c.CreateUser(username="Ada", role="developer", email=" ada@example.com ")
    )

    assert generated is not None
    assert len(generated) >= 20
    stored = ids.store.users[user.id]
    assert (stored.username, stored.role, stored.email) == (
        "ada",
        Role.DEVELOPER,
        "ada@example.com",
    )
    assert (stored.active, stored.created_at, stored.updated_at) == (True, T0, T0)
    assert stored.password_hash is not None
    assert generated not in stored.password_hash
    assert (await ids.login("ada", generated)).user_id == user.id

    _, given = await ids.bus.handle(c.CreateUser(username="bob", password=PASSWORD))
    assert given is None
    assert [view.username for view in await ids.queries.list_users()] == ["ada", "bob"]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"username": "ADA"}, "exists already"),
        ({"username": "no spaces"}, "a username is"),
        ({"username": "x" * 65}, "a username is"),
        ({"username": ""}, "a username is"),
        ({"username": "eve", "role": "service"}, "a person's role"),
        ({"username": "eve", "role": "root"}, "a person's role"),
        ({"username": "eve", "email": "not-an-address"}, "not an email"),
        ({"username": "eve", "password": "short"}, "at least 8"),
        ({"username": "eve", "password": "x" * 1025}, "at most 1024"),
    ],
)
async def test_what_a_user_may_not_be(
    ids: Identities, fields: dict[str, str], message: str
) -> None:
    await ids.user("ada")
    with pytest.raises((Conflict, InvalidValue), match=message):
        await ids.bus.handle(c.CreateUser(**fields))  # type: ignore[arg-type]
    assert [user.username for user in ids.store.users.values()] == ["ada"]


async def test_an_admin_changes_role_email_and_password(ids: Identities) -> None:
    user = await ids.user("ada", Role.VIEWER)
    ids.clock.advance(hours=1)
    changed = await ids.bus.handle(
        c.UpdateUser(user_id=user.id, role="admin", email="ada@example.com", password="n3w pass")
    )

    stored = ids.store.users[user.id]
    assert (stored.role, stored.email, stored.updated_at) == (
        Role.ADMIN,
        "ada@example.com",
        T0.replace(hour=13),
    )
    assert stored.version == changed.version == user.version + 1
    with pytest.raises(InvalidCredentials):
        await ids.login("ada", PASSWORD)
    await ids.login("ada", "n3w pass")

    await ids.bus.handle(c.UpdateUser(user_id=user.id, email=None))
    assert ids.store.users[user.id].email is None
    with pytest.raises(NotFound):
        await ids.bus.handle(c.UpdateUser(user_id="nope", role="viewer"))


async def test_a_new_password_or_a_deactivation_ends_the_sessions(ids: Identities) -> None:
    user = await ids.user("ada")
    await ids.user("root", Role.ADMIN)
    before = await ids.login()
    await ids.bus.handle(c.UpdateUser(user_id=user.id, password="an0ther one"))
    assert ids.store.sessions[before.session_id].state(ids.clock.now()) == TokenState.REVOKED
    with pytest.raises(InvalidCredentials):
        await ids.authenticator.principal(before.access_token)

    signed = await ids.login("ada", "an0ther one")
    await ids.bus.handle(c.UpdateUser(user_id=user.id, active=False))
    with pytest.raises(InvalidCredentials):
        await ids.login("ada", "an0ther one")
    await ids.bus.handle(c.UpdateUser(user_id=user.id, active=True))
    with pytest.raises(InvalidCredentials):  # reactivation does not revive old sessions
        await ids.authenticator.principal(signed.access_token)
    await ids.login("ada", "an0ther one")


async def test_the_last_active_admin_stays_one(ids: Identities) -> None:
    root = await ids.user("root", Role.ADMIN)
    with pytest.raises(Conflict, match="last active admin"):
        await ids.bus.handle(c.UpdateUser(user_id=root.id, role="developer"))
    with pytest.raises(Conflict, match="last active admin"):
        await ids.bus.handle(c.UpdateUser(user_id=root.id, active=False))
    assert ids.store.users[root.id].is_active_admin

    ada = await ids.user("ada", Role.ADMIN)
    await ids.bus.handle(c.UpdateUser(user_id=ada.id, role="developer"))
    with pytest.raises(Conflict):
        await ids.bus.handle(c.UpdateUser(user_id=root.id, role="viewer"))
    await ids.bus.handle(c.UpdateUser(user_id=root.id, email="root@example.com"))  # not a demotion

    await ids.bus.handle(c.UpdateUser(user_id=ada.id, role="admin"))
    await ids.bus.handle(c.UpdateUser(user_id=root.id, active=False))
    assert [u.username for u in ids.store.users.values() if u.is_active_admin] == ["ada"]


async def test_two_admins_demoting_each_other_at_once_leave_one(ids: Identities) -> None:
    """The second to commit finds its locked admins changed, and on its retry, no other."""
    root = await ids.user("root", Role.ADMIN)
    ada = await ids.user("ada", Role.ADMIN)
    async with ids.bus.uow_factory() as first, ids.bus.uow_factory() as second:
        for uow, user_id in ((first, root.id), (second, ada.id)):
            user = await uow.users.get(user_id)
            assert len(await uow.users.active_admins(lock=True)) == 2
            user.change_role("developer", ids.clock.now())
            await uow.users.save(user)
        await first.commit()
        with pytest.raises(StaleState):
            await second.commit()
    with pytest.raises(Conflict, match="last active admin"):
        await ids.bus.handle(c.UpdateUser(user_id=ada.id, role="developer"))
    assert [u.username for u in ids.store.users.values() if u.is_active_admin] == ["ada"]
