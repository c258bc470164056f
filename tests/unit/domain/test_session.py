"""Sign-in sessions: refresh tokens name their session, rotate, and end."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ferrous.domain.errors import InvalidCredentials
from ferrous.domain.registration_token import TokenState
from ferrous.domain.session import Session, refresh_token, session_of_refresh_token

T0 = datetime(2025, 1, 31, 12, 0, tzinfo=UTC)
SID = "0194b6a2-7c00-7000-8000-000000000001"


def start() -> Session:
    return Session.start(
        id=SID, user_id="u1", refresh_hash="a" * 64, now=T0, expires_at=T0 + timedelta(days=1)
    )


def test_a_refresh_token_names_its_session() -> None:
    token = refresh_token(SID, "s3cret")
    assert token == f"frf_{SID}.s3cret"
    assert session_of_refresh_token(token) == SID


@pytest.mark.parametrize(
    "token", ["", "frf_", "frf_.secret", f"frf_{SID}.", f"frf_{SID}", f"fpt_{SID}.x", "x" * 50]
)
def test_other_strings_are_not_refresh_tokens(token: str) -> None:
    with pytest.raises(InvalidCredentials):
        session_of_refresh_token(token)
    with pytest.raises(InvalidCredentials):
        session_of_refresh_token("frf_" + "x" * 37 + ".secret")  # longer than an id


def test_rotation_replaces_the_current_refresh_token() -> None:
    session = start()
    assert session.is_current("a" * 64)
    session.rotate("b" * 64, T0 + timedelta(minutes=5))
    assert not session.is_current("a" * 64)
    assert session.is_current("b" * 64)
    assert session.rotated_at == T0 + timedelta(minutes=5)


def test_a_session_ends_when_revoked_or_expired() -> None:
    session = start()
    assert session.state(T0 + timedelta(hours=23)) == TokenState.ACTIVE
    with pytest.raises(InvalidCredentials, match="expired"):
        session.rotate("b" * 64, T0 + timedelta(days=1))

    session.revoke(T0 + timedelta(minutes=1))
    session.revoke(T0 + timedelta(minutes=2))
    assert session.revoked_at == T0 + timedelta(minutes=1)
    with pytest.raises(InvalidCredentials, match="revoked"):
        session.check_usable(T0 + timedelta(minutes=3))
    with pytest.raises(InvalidCredentials):
        session.rotate("c" * 64, T0 + timedelta(minutes=3))
    assert session.is_current("a" * 64)
