"""Users: what a username, an email and a person's role may be, and how a user changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest

from ferrous.domain.access import Role
from ferrous.domain.errors import InvalidValue
from ferrous.domain.user import User, checked_email, checked_username

T0 = datetime(2025, 1, 31, 12, 0, tzinfo=UTC)
T1 = T0 + timedelta(hours=1)


def test_a_new_user_is_active_with_its_names_normalized() -> None:
    user = User.create(username="  Ada.L-1_ ", role="developer", now=T0, email=" a@b.example ")

    assert UUID(user.id).version == 7
    assert (user.username, user.role, user.email) == ("ada.l-1_", Role.DEVELOPER, "a@b.example")
    assert (user.active, user.password_hash, user.version) == (True, None, 0)
    assert (user.created_at, user.updated_at) == (T0, T0)
    assert not user.is_active_admin


@pytest.mark.parametrize("name", ["", " ", "a b", "ada!", "é", "x" * 65, "ada/..", "ada@home"])
def test_usernames_are_short_and_plain(name: str) -> None:
    with pytest.raises(InvalidValue, match="a username is"):
        checked_username(name)


def test_the_longest_and_shortest_usernames() -> None:
    assert checked_username("x" * 64) == "x" * 64
    assert checked_username("0") == "0"


@pytest.mark.parametrize("email", ["ada", "@example.com", "ada@localhost", "a b@c.example"])
def test_email_addresses_get_a_light_check(email: str) -> None:
    with pytest.raises(InvalidValue):
        checked_email(email)


def test_no_email_is_none() -> None:
    assert checked_email(None) is None
    assert checked_email("  ") is None
    with pytest.raises(InvalidValue):
        checked_email("a@" + "b" * 250 + ".example")


@pytest.mark.parametrize("role", ["service", "root", "", "ADMIN"])
def test_a_person_is_admin_developer_or_viewer(role: str) -> None:
    with pytest.raises(InvalidValue, match="a person's role"):
        User.create(username="ada", role=role, now=T0)
    user = User.create(username="ada", role=Role.VIEWER, now=T0)
    with pytest.raises(InvalidValue):
        user.change_role(role, T1)
    assert user.role == Role.VIEWER


def test_changes_are_stamped() -> None:
    user = User.create(username="ada", role="admin", now=T0)
    assert user.is_active_admin
    user.deactivate(T1)
    assert (user.active, user.updated_at, user.is_active_admin) == (False, T1, False)
    user.activate(T1 + timedelta(1))
    user.change_role("viewer", T1)
    user.change_email("ada@example.com", T1)
    user.set_password_hash("$argon2id$...", T1)
    assert (user.active, user.role, user.email) == (True, Role.VIEWER, "ada@example.com")
    assert (user.password_hash, user.updated_at) == ("$argon2id$...", T1)
