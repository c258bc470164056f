"""Pipeline trigger tokens: what a new one may be, and when one starts builds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest

from ferrous.domain.errors import InvalidCredentials, InvalidValue
from ferrous.domain.registration_token import TokenState
from ferrous.domain.trigger_token import TRIGGER_TOKEN_PREFIX, TriggerToken

T0 = datetime(2025, 1, 31, 12, 0, tzinfo=UTC)
HASH = "b" * 64


def issue(expires_at: datetime | None = None, description: str = "") -> TriggerToken:
    return TriggerToken.issue(
        project_id="p1", token_hash=HASH, now=T0, description=description, expires_at=expires_at
    )


def test_a_new_token_belongs_to_its_project_and_is_active() -> None:
    token = issue(description="  deploy script ")

    assert TRIGGER_TOKEN_PREFIX == "ftt_"
    assert UUID(token.id).version == 7
    assert (token.project_id, token.description, token.created_at) == ("p1", "deploy script", T0)
    assert (token.last_used_at, token.revoked_at, token.expires_at) == (None, None, None)
    assert token.state(T0 + timedelta(days=3650)) == TokenState.ACTIVE


def test_a_token_that_could_never_be_used_is_refused() -> None:
    with pytest.raises(InvalidValue, match="not in the future"):
        issue(expires_at=T0)
    with pytest.raises(InvalidValue, match="at most 200"):
        issue(description="x" * 201)


def test_using_stamps_the_time_and_refuses_expired_and_revoked_tokens() -> None:
    token = issue(expires_at=T0 + timedelta(hours=1))
    token.use(T0 + timedelta(minutes=5))
    assert token.last_used_at == T0 + timedelta(minutes=5)

    with pytest.raises(InvalidCredentials, match="the trigger token is expired"):
        token.use(T0 + timedelta(hours=1))
    token.revoke(T0 + timedelta(minutes=10))
    token.revoke(T0 + timedelta(minutes=20))  # the first moment stays
    assert token.revoked_at == T0 + timedelta(minutes=10)
    with pytest.raises(InvalidCredentials, match="the trigger token is revoked"):
        token.use(T0 + timedelta(minutes=11))  # revocation wins over expiry, too
    assert token.last_used_at == T0 + timedelta(minutes=5)
