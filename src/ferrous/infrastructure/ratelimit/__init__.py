"""Rate limiters (the ``RateLimiter`` port): in memory for one server, Redis for several.

``rate_limiter_for`` picks one: ``FERROUS_RATE_LIMIT_URL`` when set (``memory://`` or
``redis[s]://...``), else the broker's Redis when the broker is one (servers that share a
broker share their buckets), else memory. The Redis adapter is imported only when used.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from ferrous.application.guard_ports import RateLimiter
from ferrous.domain.errors import ConfigInvalid
from ferrous.infrastructure.broker.delivery import redact
from ferrous.infrastructure.ratelimit.memory import InMemoryRateLimiter

REDIS_SCHEMES = ("redis", "rediss")


def rate_limiter_for(rate_limit_url: str | None, broker_url: str) -> RateLimiter:
    url = rate_limit_url
    if not url and urlsplit(broker_url).scheme.lower() in REDIS_SCHEMES:
        url = broker_url
    scheme = urlsplit(url or "memory://").scheme.lower()
    if scheme == "memory":
        return InMemoryRateLimiter()
    if scheme in REDIS_SCHEMES:
        from ferrous.infrastructure.ratelimit.redis import RedisRateLimiter  # noqa: PLC0415

        assert url is not None
        return RedisRateLimiter(url)
    raise ConfigInvalid(
        f"unsupported rate limit store {redact(url or '')!r}: use memory:// or redis://host:6379/0"
    )


__all__ = ["InMemoryRateLimiter", "rate_limiter_for"]
