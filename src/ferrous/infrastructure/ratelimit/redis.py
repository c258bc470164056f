"""Token buckets in Redis, shared by every server of an installation.

Each call is one Lua script run with EVALSHA (redis-py loads it again after a Redis restart),
so reading, refilling and taking are atomic across servers. The script reads the time from
Redis itself (``TIME``): servers whose clocks disagree still agree on a bucket. A bucket is
a hash ``<prefix>ratelimit:<key>`` of ``tokens`` and ``at``, expiring once it would have
refilled (a missing key is a full bucket), so idle clients cost no memory.

Redis being down must not take the API down with it: a call that fails or takes longer than
``timeout`` is answered by a per-server in-memory bucket instead (``rate_limit_store_failed``
is logged once per outage), and Redis is tried again after ``pause`` seconds.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from ferrous.infrastructure.broker.delivery import pop_query_option, redact
from ferrous.infrastructure.ratelimit.memory import InMemoryRateLimiter, check_bucket

log = structlog.get_logger(__name__)

DEFAULT_PREFIX = "ferrous:"

#: KEYS[1] the bucket; ARGV rate (tokens per second), burst, cost (1: take, 0: peek).
#: Answers the seconds to wait as text (a Lua number would come back truncated to an integer).
TOKEN_BUCKET = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local stored = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(stored[1])
if tokens == nil then
  tokens = burst
else
  tokens = math.min(burst, tokens + math.max(0, now - tonumber(stored[2])) * rate)
end
if tokens < 1 then
  return tostring((1 - tokens) / rate)
end
if cost > 0 then
  tokens = tokens - cost
  redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
  redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate * 1000) + 1000)
end
return '0'
"""


class RedisRateLimiter:
    def __init__(
        self,
        url: str,
        *,
        prefix: str | None = None,
        timeout: float = 0.5,
        pause: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``url`` is ``redis://`` or ``rediss://``; its ``?prefix=`` (default ``ferrous:``)
        namespaces the keys, as for the Redis broker. Nothing connects until first use."""
        url, url_prefix = pop_query_option(url, "prefix")
        self.prefix = (
            prefix if prefix is not None else url_prefix or DEFAULT_PREFIX
        ) + "ratelimit:"
        self._client: Redis = Redis.from_url(url, socket_connect_timeout=timeout)
        self._script = self._client.register_script(TOKEN_BUCKET)
        self._timeout = timeout
        self._pause = pause
        self._clock = clock
        self._fallback = InMemoryRateLimiter(clock)
        self._down_until: float | None = None  # during an outage: when to try Redis again
        self._url = redact(url)

    async def take(self, key: str, rate: float, burst: int) -> float:
        return await self._apply(key, rate, burst, cost=1)

    async def peek(self, key: str, rate: float, burst: int) -> float:
        return await self._apply(key, rate, burst, cost=0)

    async def reset(self, key: str) -> None:
        await self._fallback.reset(key)
        if self._available():
            try:
                async with asyncio.timeout(self._timeout):
                    await self._client.delete(self.prefix + key)
            except (RedisError, OSError, TimeoutError) as exc:
                self._failed(exc)

    async def close(self) -> None:
        await self._client.aclose()

    async def _apply(self, key: str, rate: float, burst: int, *, cost: int) -> float:
        check_bucket(rate, burst)
        if self._available():
            try:
                async with asyncio.timeout(self._timeout):
                    answer = await self._script(
                        keys=[self.prefix + key], args=[repr(float(rate)), burst, cost]
                    )
            except (RedisError, OSError, TimeoutError) as exc:
                self._failed(exc)
            else:
                self._recovered()
                return float(answer)
        return self._fallback.apply(key, rate, burst, cost=cost)

    def _available(self) -> bool:
        return self._down_until is None or self._clock() >= self._down_until

    def _failed(self, exc: BaseException) -> None:
        if self._down_until is None:
            log.warning(
                "rate_limit_store_failed", store=self._url, error=str(exc) or type(exc).__name__
            )
        self._down_until = self._clock() + self._pause

    def _recovered(self) -> None:
        if self._down_until is not None:
            self._down_until = None
            log.info("rate_limit_store_recovered", store=self._url)
