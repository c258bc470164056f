"""What every kind of issued secret token shares: a random secret with a recognizable
prefix, stored only as its hash, and an expiry given relative or absolute.

Agent registration tokens and pipeline trigger tokens are issued the same way; keeping the
recipe here means one place decides how long the secrets are and how they are hashed.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from ferrous.application.use_cases.register_agent import hash_token
from ferrous.domain.errors import InvalidValue


def new_secret(prefix: str) -> tuple[str, str]:
    """``(plain, hash)``: the plain secret is returned to its creator once, never stored."""
    plain = prefix + secrets.token_urlsafe(32)
    return plain, hash_token(plain)


def expiry(
    now: datetime, expires_in: timedelta | None, expires_at: datetime | None
) -> datetime | None:
    """When a new token stops working: ``now + expires_in`` or ``expires_at`` (not both)."""
    if expires_in is not None and expires_at is not None:
        raise InvalidValue("give expires_in or expires_at, not both")
    return now + expires_in if expires_in is not None else expires_at
