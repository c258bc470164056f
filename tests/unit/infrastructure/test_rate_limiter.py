"""The in-memory token bucket's arithmetic, on a clock the test moves.

A new key starts full (``burst`` tokens), refills at ``rate`` per second up to ``burst``;
``take`` answers 0 and takes one, or the wait for the next token and takes nothing;
``peek`` answers the same without taking; ``reset`` fills the bucket again.
"""

from __future__ import annotations

import socket

import pytest
from structlog.testing import capture_logs

from ferrous.domain.errors import ConfigInvalid
from ferrous.infrastructure.ratelimit import InMemoryRateLimiter, rate_limiter_for
from ferrous.infrastructure.ratelimit.redis import RedisRateLimiter


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def limiter(clock: FakeClock) -> InMemoryRateLimiter:
    return InMemoryRateLimiter(clock)


async def test_a_burst_then_the_wait_for_the_next_token(
    limiter: InMemoryRateLimiter, clock: FakeClock
) -> None:
    assert [await limiter.take("k", 2.0, 3) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert await limiter.take("k", 2.0, 3) == pytest.approx(0.5)  # 2 tokens per second
    clock.now += 0.2
    assert await limiter.take("k", 2.0, 3) == pytest.approx(0.3)  # refused: nothing taken
    clock.now += 0.3
    assert await limiter.take("k", 2.0, 3) == 0.0
    assert await limiter.take("k", 2.0, 3) == pytest.approx(0.5)


async def test_refilling_stops_at_the_burst(limiter: InMemoryRateLimiter, clock: FakeClock) -> None:
    await limiter.take("k", 1.0, 2)
    clock.now += 3600  # an hour idle: still only 2 tokens
    assert [await limiter.take("k", 1.0, 2) for _ in range(3)] == [0.0, 0.0, pytest.approx(1.0)]


async def test_keys_are_separate(limiter: InMemoryRateLimiter) -> None:
    assert await limiter.take("a", 1.0, 1) == 0.0
    assert await limiter.take("a", 1.0, 1) == pytest.approx(1.0)
    assert await limiter.take("b", 1.0, 1) == 0.0


async def test_a_slow_rate_waits_long(limiter: InMemoryRateLimiter, clock: FakeClock) -> None:
    """Five failures per fifteen minutes: the sixth waits three minutes."""
    rate = 5 / 900
    assert [await limiter.take("login", rate, 5) for _ in range(5)] == [0.0] * 5
    assert await limiter.take("login", rate, 5) == pytest.approx(180.0)
    clock.now += 179
    assert await limiter.peek("login", rate, 5) == pytest.approx(1.0)
    clock.now += 1
    assert await limiter.take("login", rate, 5) == 0.0


async def test_peek_takes_nothing(limiter: InMemoryRateLimiter) -> None:
    for _ in range(10):
        assert await limiter.peek("k", 1.0, 1) == 0.0
    assert await limiter.take("k", 1.0, 1) == 0.0
    assert await limiter.peek("k", 1.0, 1) == pytest.approx(1.0)
    assert await limiter.peek("k", 1.0, 1) == pytest.approx(1.0)


async def test_reset_fills_the_bucket(limiter: InMemoryRateLimiter) -> None:
    await limiter.take("k", 0.01, 1)
    assert await limiter.take("k", 0.01, 1) > 0
    await limiter.reset("k")
    assert await limiter.take("k", 0.01, 1) == 0.0
    await limiter.reset("never-used")


async def test_refilled_buckets_are_forgotten(clock: FakeClock) -> None:
    limiter = InMemoryRateLimiter(clock, max_keys=4)
    for n in range(4):
        await limiter.take(f"k{n}", 1.0, 1)
    assert len(limiter) == 4
    clock.now += 1.0  # all four refilled: the fifth key makes room by dropping them
    await limiter.take("k4", 1.0, 1)
    assert len(limiter) == 1
    for n in range(5, 9):  # none refilled: the half nearest to full goes
        await limiter.take(f"k{n}", 1.0, 1)
        clock.now += 0.01
    assert len(limiter) <= 4
    assert await limiter.take("k8", 1.0, 1) > 0  # the newest is still counted


async def test_a_bucket_needs_a_rate_and_a_burst(limiter: InMemoryRateLimiter) -> None:
    with pytest.raises(ValueError, match="rate > 0"):
        await limiter.take("k", 0.0, 1)
    with pytest.raises(ValueError, match="burst >= 1"):
        await limiter.take("k", 1.0, 0)


def test_the_store_follows_the_settings() -> None:
    assert isinstance(rate_limiter_for(None, "memory://"), InMemoryRateLimiter)
    assert isinstance(rate_limiter_for(None, "amqp://guest@mq/"), InMemoryRateLimiter)
    shared = rate_limiter_for(None, "redis://cache:6379/0?prefix=ci:")
    assert isinstance(shared, RedisRateLimiter)
    assert shared.prefix == "ci:ratelimit:"
    assert isinstance(rate_limiter_for("memory://", "redis://cache:6379/0"), InMemoryRateLimiter)
    assert isinstance(rate_limiter_for("rediss://cache:6380/1", "memory://"), RedisRateLimiter)
    with pytest.raises(ConfigInvalid, match="rate limit store") as refused:
        rate_limiter_for("memcached://x:secret@cache", "memory://")
    assert "secret" not in str(refused.value)


async def test_without_redis_each_server_counts_alone(clock: FakeClock) -> None:
    """Redis away: buckets in memory answer, and Redis is tried again after the pause."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed once the block ends: connections are refused
    limiter = RedisRateLimiter(f"redis://127.0.0.1:{port}/0", pause=5.0, clock=clock)
    try:
        with capture_logs() as logs:
            assert await limiter.take("k", 1.0, 2) == 0.0
            assert await limiter.take("k", 1.0, 2) == 0.0
            assert await limiter.take("k", 1.0, 2) == pytest.approx(1.0)
            await limiter.reset("k")
            assert await limiter.take("k", 1.0, 2) == 0.0
            clock.now += 5.0
            assert await limiter.peek("k", 1.0, 2) == 0.0  # Redis tried again, failed again
        failures = [log for log in logs if log["event"] == "rate_limit_store_failed"]
        assert len(failures) == 1  # once per outage
        assert str(port) in failures[0]["store"]
    finally:
        await limiter.close()
