"""API tokens: their kinds, scopes, names, expiry, state and revocation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ferrous.domain.access import SERVICE_SCOPES
from ferrous.domain.api_token import ApiToken, ApiTokenKind
from ferrous.domain.errors import InvalidCredentials, InvalidValue
from ferrous.domain.registration_token import TokenState

T0 = datetime(2025, 1, 31, 12, 0, tzinfo=UTC)
PERSONAL = "fpt_0123456789abcdefghij"
SERVICE = "fst_0123456789abcdefghij"


def issue(**fields: Any) -> ApiToken:
    values: dict[str, Any] = {
        "user_id": "u1",
        "name": "cli",
        "kind": ApiTokenKind.PERSONAL,
        "plain": PERSONAL,
        "token_hash": "h" * 64,
        "now": T0,
        **fields,
    }
    return ApiToken.issue(**values)


def test_a_personal_token_keeps_a_prefix_and_the_hash_only() -> None:
    token = issue(name="  laptop  ")
    assert (token.name, token.kind, token.scopes) == ("laptop", ApiTokenKind.PERSONAL, frozenset())
    assert token.prefix == "fpt_01234567"
    assert PERSONAL not in repr(token)
    assert token.state(T0 + timedelta(days=3650)) == TokenState.ACTIVE


def test_a_service_token_has_scopes_within_the_service_scopes() -> None:
    token = issue(kind=ApiTokenKind.SERVICE, plain=SERVICE, scopes=frozenset({"builds:trigger"}))
    assert token.scopes == {"builds:trigger"}
    everything = issue(kind=ApiTokenKind.SERVICE, plain=SERVICE, scopes=SERVICE_SCOPES)
    assert everything.scopes == SERVICE_SCOPES


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"kind": ApiTokenKind.SERVICE, "plain": SERVICE}, "at least one scope"),
        (
            {"kind": ApiTokenKind.SERVICE, "plain": SERVICE, "scopes": frozenset({"public"})},
            "not scopes",
        ),
        ({"scopes": frozenset({"builds:read"})}, "only service tokens"),
        ({"name": " "}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"plain": SERVICE}, "starts with fpt_"),
        ({"expires_at": T0}, "not in the future"),
    ],
)
def test_what_a_token_may_not_be(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidValue, match=message):
        issue(**fields)


def test_expiry_and_revocation() -> None:
    token = issue(expires_at=T0 + timedelta(hours=1))
    token.check_usable(T0 + timedelta(minutes=59))
    with pytest.raises(InvalidCredentials, match="expired"):
        token.check_usable(T0 + timedelta(hours=1))

    token.revoke(T0 + timedelta(minutes=1))
    token.revoke(T0 + timedelta(minutes=2))
    assert token.revoked_at == T0 + timedelta(minutes=1)
    with pytest.raises(InvalidCredentials, match="revoked"):  # revocation wins over expiry
        token.check_usable(T0 + timedelta(hours=2))
