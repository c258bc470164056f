"""The Redis token buckets against a real Redis (``FERROUS_TEST_REDIS_URL``).

Two limiters stand for two servers: they share one bucket. Each test has a key prefix of
its own, so runs can share a Redis. Without the variable these tests skip; with it, a Redis
that does not answer fails them.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from ferrous.infrastructure.ratelimit.redis import RedisRateLimiter

pytestmark = pytest.mark.integration


@pytest.fixture
def redis_url() -> str:
    url = os.environ.get("FERROUS_TEST_REDIS_URL")
    if not url:
        pytest.skip("FERROUS_TEST_REDIS_URL is not set (e.g. redis://127.0.0.1:6379/0)")
    return url


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    try:
        async with asyncio.timeout(5):
            await client.ping()  # a configured Redis that does not answer fails the tests
        yield client
    finally:
        await client.aclose()


@pytest.fixture
def prefix() -> str:
    return f"ferrous-test-{uuid.uuid4().hex[:12]}:"


@pytest.fixture
async def servers(
    redis_url: str, redis: Redis, prefix: str
) -> AsyncIterator[tuple[RedisRateLimiter, RedisRateLimiter]]:
    first = RedisRateLimiter(f"{redis_url}?prefix={prefix}")
    second = RedisRateLimiter(redis_url, prefix=prefix)
    try:
        yield first, second
    finally:
        await first.close()
        await second.close()
        keys = [key async for key in redis.scan_iter(match=f"{prefix}*")]
        if keys:
            await redis.delete(*keys)


async def test_two_servers_share_one_bucket(
    servers: tuple[RedisRateLimiter, RedisRateLimiter],
) -> None:
    first, second = servers
    assert await first.take("ip:192.0.2.1", 1.0, 3) == 0.0
    assert await second.take("ip:192.0.2.1", 1.0, 3) == 0.0
    assert await first.take("ip:192.0.2.1", 1.0, 3) == 0.0
    wait = await second.take("ip:192.0.2.1", 1.0, 3)
    assert 0.9 < wait <= 1.0  # empty for both: about a second until the next token
    assert await first.peek("ip:192.0.2.1", 1.0, 3) > 0
    assert await second.take("ip:192.0.2.2", 1.0, 3) == 0.0  # another key, another bucket


async def test_tokens_come_back_at_the_rate(
    servers: tuple[RedisRateLimiter, RedisRateLimiter],
) -> None:
    first, second = servers
    for _ in range(2):
        assert await first.take("k", 10.0, 2) == 0.0
    wait = await second.take("k", 10.0, 2)
    assert 0.0 < wait <= 0.1
    await asyncio.sleep(wait + 0.02)
    assert await second.take("k", 10.0, 2) == 0.0


async def test_concurrent_takes_never_exceed_the_burst(
    servers: tuple[RedisRateLimiter, RedisRateLimiter],
) -> None:
    first, second = servers
    answers = await asyncio.gather(
        *(limiter.take("hot", 0.001, 10) for limiter in (first, second) for _ in range(15))
    )
    assert sum(1 for wait in answers if wait == 0.0) == 10


async def test_peek_and_reset(servers: tuple[RedisRateLimiter, RedisRateLimiter]) -> None:
    first, second = servers
    for _ in range(5):
        assert await first.peek("login:account:alice", 5 / 900, 1) == 0.0
    assert await first.take("login:account:alice", 5 / 900, 1) == 0.0
    assert await second.peek("login:account:alice", 5 / 900, 1) == pytest.approx(180, abs=1)
    await second.reset("login:account:alice")
    assert await first.take("login:account:alice", 5 / 900, 1) == 0.0


async def test_buckets_expire_once_refilled(
    servers: tuple[RedisRateLimiter, RedisRateLimiter], redis: Redis, prefix: str
) -> None:
    first, _ = servers
    await first.take("k", 2.0, 10)  # one token short: refilled in half a second
    ttl = await redis.pttl(f"{prefix}ratelimit:k")
    assert 0 < ttl <= 1500
    await first.peek("other", 2.0, 10)
    assert await redis.exists(f"{prefix}ratelimit:other") == 0  # a peek writes nothing


async def test_the_script_is_loaded_again_after_a_flush(
    servers: tuple[RedisRateLimiter, RedisRateLimiter], redis: Redis
) -> None:
    first, _ = servers
    assert await first.take("k", 1.0, 2) == 0.0
    await redis.script_flush()  # as after a Redis restart: EVALSHA answers NOSCRIPT
    assert await first.take("k", 1.0, 2) == 0.0
    assert await first.take("k", 1.0, 2) > 0
