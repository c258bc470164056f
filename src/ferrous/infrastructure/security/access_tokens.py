"""Access tokens as JWTs (PyJWT), HS256 under one key shared by the installation's servers.

Claims: ``iss`` "ferrous", ``sub`` the user id, ``sid`` the session id, ``role``, ``typ``
"access", ``iat``, ``exp`` and a random ``jti``. Decoding pins ``algorithms=["HS256"]``, so
a token that names another algorithm (``none``, or RS256 with our key passed off as a
public key) is refused before its signature is even looked at; every claim is required.
Expiry is checked against the caller's clock (the ``Clock`` port), not PyJWT's.

The key is ``FERROUS_JWT_KEY`` when set (at least 32 characters), else derived with HKDF
from the newest key of the secret box's key ring, so that every server of one installation
agrees without another setting. Rotating that key signs the existing access tokens out
(they last minutes; refresh tokens are not JWTs and keep working); servers that read the key
file must restart to follow a rotation, or share a ``FERROUS_JWT_KEY``.
"""

from __future__ import annotations

import base64
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ferrous.application.identity_ports import AccessClaims
from ferrous.domain.errors import ConfigInvalid, InvalidCredentials
from ferrous.infrastructure.security.secret_box import KeyRing

ALGORITHM = "HS256"
ISSUER = "ferrous"
ACCESS = "access"
MIN_KEY_BYTES = 32
HKDF_INFO = b"ferrous-ci access tokens v1"
#: how far in the future an ``iat`` may be (servers' clocks differ a little)
CLOCK_SKEW = timedelta(seconds=60)
_CLAIMS = ("iss", "sub", "sid", "role", "typ", "iat", "exp", "jti")


def signing_key(jwt_key: str | None, keys: KeyRing | None) -> bytes:
    """``FERROUS_JWT_KEY``'s bytes, or a key derived from the key ring's newest key."""
    if jwt_key:
        key = jwt_key.encode()
        if len(key) < MIN_KEY_BYTES:
            raise ConfigInvalid(f"FERROUS_JWT_KEY must be at least {MIN_KEY_BYTES} bytes long")
        return key
    if keys is None:
        raise ConfigInvalid("set FERROUS_JWT_KEY, or a secret key to derive it from")
    encoded = keys.encoded[0]
    newest = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=HKDF_INFO).derive(newest)


class JwtAccessTokens:
    def __init__(self, key: bytes) -> None:
        if len(key) < MIN_KEY_BYTES:
            raise ConfigInvalid(f"an access token key has at least {MIN_KEY_BYTES} bytes")
        self._key = key

    def __repr__(self) -> str:
        return "JwtAccessTokens(key=...)"

    def issue(
        self, *, user_id: str, role: str, session_id: str, now: datetime, ttl: timedelta
    ) -> str:
        claims = {
            "iss": ISSUER,
            "sub": user_id,
            "sid": session_id,
            "role": role,
            "typ": ACCESS,
            "iat": int(now.timestamp()),
            "exp": int((now + ttl).timestamp()),
            "jti": secrets.token_urlsafe(12),
        }
        return jwt.encode(claims, self._key, algorithm=ALGORITHM)

    def verify(self, token: str, *, now: datetime) -> AccessClaims:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._key,
                algorithms=[ALGORITHM],
                issuer=ISSUER,
                options={
                    "require": list(_CLAIMS),
                    "verify_exp": False,  # against ``now`` below
                    "verify_iat": False,
                    "verify_nbf": False,
                },
            )
        except jwt.PyJWTError as exc:
            raise InvalidCredentials("invalid access token") from exc
        if claims["typ"] != ACCESS:
            raise InvalidCredentials("not an access token")
        texts = [claims[name] for name in ("sub", "sid", "role", "jti")]
        times = [claims[name] for name in ("iat", "exp")]
        if not all(isinstance(value, str) and value for value in texts) or not all(
            isinstance(value, int) and not isinstance(value, bool) for value in times
        ):
            raise InvalidCredentials("invalid access token")
        try:
            issued_at = datetime.fromtimestamp(claims["iat"], UTC)
            expires_at = datetime.fromtimestamp(claims["exp"], UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise InvalidCredentials("invalid access token") from exc
        if now >= expires_at:
            raise InvalidCredentials("the access token has expired")
        if issued_at > now + CLOCK_SKEW:
            raise InvalidCredentials("the access token was issued in the future")
        return AccessClaims(
            user_id=claims["sub"],
            session_id=claims["sid"],
            role=claims["role"],
            token_id=claims["jti"],
            issued_at=issued_at,
            expires_at=expires_at,
        )
