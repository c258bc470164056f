"""Checking that a delivery comes from the forge: HMACs over the raw body, or GitLab's token.

Every comparison is constant-time (``hmac.compare_digest`` over bytes), and every failure is
the same error class with a message that says which header and what is wrong, never what the
right value would have been. A project without a secret refuses every delivery: an unsigned
hook would let anyone who can reach the server start builds with the project's secrets.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence

from ferrous.application.webhooks import WebhookSecretMissing, WebhookSignatureInvalid

SHA256_PREFIX = "sha256="


def lower_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Header names lowercased, so any mapping (Starlette's or a test's dict) reads the same."""
    return {str(name).lower(): str(value) for name, value in headers.items()}


def hmac_sha256_hex(secret: str, body: bytes) -> str:
    """What the forge computes: hex HMAC-SHA256 of the exact body bytes, keyed by the secret."""
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def require_secret(secret: str | None) -> str:
    if not secret:
        raise WebhookSecretMissing()
    return secret


def first_header(headers: Mapping[str, str], names: Sequence[str]) -> tuple[str, str] | None:
    """The first of ``names`` present (in that order of preference), with its value.

    Only that one is checked: a bad preferred header is not rescued by a good fallback.
    """
    lowered = lower_headers(headers)
    for name in names:
        if name.lower() in lowered:
            return name, lowered[name.lower()]
    return None


def check_hex_hmac(
    headers: Mapping[str, str],
    names: Sequence[str],
    body: bytes,
    secret: str | None,
    *,
    prefix: str = "",
) -> None:
    """Verify an HMAC-SHA256 header: bare hex (Gitea, Gogs) or ``sha256=`` hex (GitHub, ...).

    A header with another algorithm's prefix (``sha1=``) is refused, not downgraded to.
    """
    key = require_secret(secret)
    found = first_header(headers, names)
    if found is None:
        raise WebhookSignatureInvalid(f"missing signature header {' or '.join(names)}")
    name, value = found
    value = value.strip()
    if prefix:
        if not value.lower().startswith(prefix):
            shown = value.partition("=")[0][:16] + "=" if "=" in value else "no prefix"
            raise WebhookSignatureInvalid(f"{name} must start with {prefix!r}, not {shown}")
        value = value[len(prefix) :]
    expected = hmac_sha256_hex(key, body).encode("ascii")
    if not hmac.compare_digest(expected, _bytes(value.lower())):
        raise WebhookSignatureInvalid(f"{name} does not match the body and the project's secret")


def check_token(headers: Mapping[str, str], name: str, secret: str | None) -> None:
    """GitLab sends the secret itself in ``X-Gitlab-Token``: compare it, in constant time."""
    key = require_secret(secret)
    found = first_header(headers, [name])
    if found is None:
        raise WebhookSignatureInvalid(f"missing {name} header")
    expected = key.encode("utf-8")
    # Both readings are compared, each in constant time: ASGI servers decode header bytes as
    # latin-1, so a non-ASCII token only matches once encoded back the same way.
    matches = [hmac.compare_digest(expected, raw) for raw in _readings(found[1])]
    if not any(matches):
        raise WebhookSignatureInvalid(f"{name} does not match the project's secret")


def _bytes(text: str) -> bytes:
    """Header text as bytes for compare_digest, which refuses non-ASCII ``str``."""
    return text.encode("utf-8", "surrogatepass")


def _readings(text: str) -> list[bytes]:
    try:
        return [text.encode("latin-1"), _bytes(text)]
    except UnicodeEncodeError:
        return [_bytes(text)]
