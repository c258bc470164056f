"""Agent registration tokens: what a new one may be, and the rule "usable now?"."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest

from ferrous.domain.errors import InvalidCredentials, InvalidValue
from ferrous.domain.registration_token import RegistrationToken, TokenState, token_state

T0 = datetime(2025, 1, 31, 12, 0, tzinfo=UTC)
HASH = "a" * 64


def issue(**fields: Any) -> RegistrationToken:
    return RegistrationToken.issue(token_hash=HASH, now=T0, **fields)


def test_a_new_token_is_unused_and_active() -> None:
    token = issue(description="  rack 3  ", max_uses=2, expires_at=T0 + timedelta(days=1))

    assert UUID(token.id).version == 7
    assert (token.description, token.token_hash, token.created_at) == ("rack 3", HASH, T0)
    assert (token.uses, token.last_used_at, token.revoked_at) == (0, None, None)
    assert token.state(T0) == TokenState.ACTIVE
    assert token.usable(T0)


def test_without_limits_it_never_runs_out() -> None:
    token = issue()
    for n in range(100):
        token.use(T0 + timedelta(days=n * 365))

    assert token.uses == 100
    assert token.usable(T0 + timedelta(days=365 * 1000))


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"max_uses": 0}, "max_uses must be at least 1"),
        ({"expires_at": T0}, "is not in the future"),
        ({"expires_at": T0 - timedelta(seconds=1)}, "is not in the future"),
        ({"description": "x" * 201}, "at most 200 characters"),
    ],
)
def test_a_token_that_could_never_work_is_refused(fields: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidValue, match=message):
        issue(**fields)


def test_each_use_is_counted_until_max_uses() -> None:
    token = issue(max_uses=2)
    token.use(T0 + timedelta(minutes=1))
    token.use(T0 + timedelta(minutes=2))

    assert (token.uses, token.last_used_at) == (2, T0 + timedelta(minutes=2))
    assert token.state(T0) == TokenState.USED_UP
    with pytest.raises(InvalidCredentials, match="is used up"):
        token.use(T0 + timedelta(minutes=3))
    assert token.uses == 2


def test_it_expires_at_its_expiry_exactly() -> None:
    expiry = T0 + timedelta(hours=1)
    token = issue(expires_at=expiry)

    assert token.usable(expiry - timedelta(microseconds=1))
    assert token.state(expiry) == TokenState.EXPIRED
    with pytest.raises(InvalidCredentials, match="is expired"):
        token.check_usable(expiry)


def test_revoking_is_final_and_keeps_its_first_moment() -> None:
    token = issue()
    token.revoke(T0 + timedelta(minutes=1))
    token.revoke(T0 + timedelta(minutes=2))

    assert token.revoked_at == T0 + timedelta(minutes=1)
    with pytest.raises(InvalidCredentials, match="is revoked"):
        token.use(T0 + timedelta(minutes=3))


@pytest.mark.parametrize(
    ("revoked", "expired", "used_up", "state"),
    [
        (False, False, False, TokenState.ACTIVE),
        (False, False, True, TokenState.USED_UP),
        (False, True, True, TokenState.EXPIRED),
        (True, True, True, TokenState.REVOKED),
        (True, False, False, TokenState.REVOKED),
    ],
)
def test_the_first_reason_an_admin_can_act_on_is_shown(
    revoked: bool, expired: bool, used_up: bool, state: TokenState
) -> None:
    now = T0 + timedelta(days=1)
    assert (
        token_state(
            now=now,
            revoked_at=T0 if revoked else None,
            expires_at=T0 if expired else None,
            max_uses=1,
            uses=1 if used_up else 0,
        )
        == state
    )
