"""Access tokens as JWTs: what is issued, and everything that must be refused."""

from __future__ import annotations

import base64
import json
import warnings
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest

from ferrous.domain.errors import ConfigInvalid, InvalidCredentials
from ferrous.infrastructure.security.access_tokens import JwtAccessTokens, signing_key
from ferrous.infrastructure.security.secret_box import KeyRing

KEY = b"k" * 32
T0 = datetime(2025, 1, 31, 12, 0, tzinfo=UTC)
TTL = timedelta(minutes=15)


def issue(tokens: JwtAccessTokens | None = None, now: datetime = T0) -> str:
    return (tokens or JwtAccessTokens(KEY)).issue(
        user_id="u1", role="developer", session_id="s1", now=now, ttl=TTL
    )


def forged(claims: dict[str, Any], key: bytes = KEY, **kw: Any) -> str:
    base = {
        "iss": "ferrous",
        "sub": "u1",
        "sid": "s1",
        "role": "admin",
        "typ": "access",
        "iat": int(T0.timestamp()),
        "exp": int((T0 + TTL).timestamp()),
        "jti": "j",
    }
    return jwt.encode({**base, **claims}, key, **{"algorithm": "HS256", **kw})


def test_a_token_round_trips_with_its_claims() -> None:
    tokens = JwtAccessTokens(KEY)
    token = issue(tokens)

    claims = tokens.verify(token, now=T0 + timedelta(minutes=1))
    assert (claims.user_id, claims.session_id, claims.role) == ("u1", "s1", "developer")
    assert (claims.issued_at, claims.expires_at) == (T0, T0 + TTL)
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "HS256"
    payload = jwt.decode(token, options={"verify_signature": False})
    assert payload["iss"] == "ferrous"
    assert payload["typ"] == "access"
    assert payload["jti"] != jwt.decode(issue(tokens), options={"verify_signature": False})["jti"]
    assert "k" * 32 not in repr(tokens)


def test_an_expired_token_is_refused() -> None:
    tokens = JwtAccessTokens(KEY)
    token = issue(tokens)
    tokens.verify(token, now=T0 + TTL - timedelta(seconds=1))
    with pytest.raises(InvalidCredentials, match="expired"):
        tokens.verify(token, now=T0 + TTL)


def test_a_token_from_the_future_is_refused() -> None:
    tokens = JwtAccessTokens(KEY)
    with pytest.raises(InvalidCredentials, match="future"):
        tokens.verify(issue(tokens, now=T0 + timedelta(minutes=5)), now=T0)


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(forged({}, key=b"w" * 32), id="wrong-key"),
        pytest.param(forged({"typ": "refresh"}), id="wrong-typ"),
        pytest.param(forged({"iss": "someone"}), id="wrong-issuer"),
        pytest.param(forged({"sub": 7}), id="sub-not-text"),
        pytest.param(forged({"exp": "tomorrow"}), id="exp-not-a-number"),
        pytest.param(forged({"exp": 10**20}), id="exp-out-of-range"),
        pytest.param(
            _b64({"alg": "none", "typ": "JWT"}) + "." + forged({}).split(".")[1] + ".",
            id="alg-none",
        ),
        pytest.param(jwt.encode({"sub": "u1"}, KEY, algorithm="HS256"), id="claims-missing"),
        pytest.param("not.a.jwt", id="garbage"),
        pytest.param("", id="empty"),
    ],
)
def test_what_is_refused(token: str) -> None:
    with pytest.raises(InvalidCredentials):
        JwtAccessTokens(KEY).verify(token, now=T0 + timedelta(minutes=1))


def test_another_algorithm_with_the_right_key_is_refused() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", jwt.warnings.InsecureKeyLengthWarning)
        token = forged({}, algorithm="HS512")
    with pytest.raises(InvalidCredentials):
        JwtAccessTokens(KEY).verify(token, now=T0)


def test_a_changed_signature_or_payload_is_refused() -> None:
    header, payload, signature = issue().split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    for token in [
        f"{header}.{_b64({**claims, 'role': 'admin'})}.{signature}",
        f"{header}.{payload}.{signature[::-1]}",
    ]:
        with pytest.raises(InvalidCredentials):
            JwtAccessTokens(KEY).verify(token, now=T0)


def test_the_key_is_configured_or_derived_from_the_newest_secret_key() -> None:
    assert signing_key("s" * 32, None) == b"s" * 32
    with pytest.raises(ConfigInvalid):
        signing_key("short", None)
    with pytest.raises(ConfigInvalid):
        signing_key(None, None)
    with pytest.raises(ConfigInvalid):
        JwtAccessTokens(b"short")

    old, new = b"o" * 32, b"n" * 32
    derived = signing_key(None, KeyRing([new, old]))
    assert len(derived) == 32
    assert derived not in (new, old)
    assert derived == signing_key(None, KeyRing([new]))  # every server with the key agrees
    assert derived != signing_key(None, KeyRing([old, new]))
    token = issue(JwtAccessTokens(derived))
    with pytest.raises(InvalidCredentials):
        JwtAccessTokens(signing_key(None, KeyRing([old]))).verify(token, now=T0)
