"""Token buckets in this process's memory: for one server, and for tests.

Buckets of several servers are not shared (use the Redis adapter for that). A bucket that
has refilled is the same as no bucket, so keys are dropped once full; when more than
``max_keys`` are held (many clients at once), those nearest to full go first.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


def check_bucket(rate: float, burst: int) -> None:
    if rate <= 0 or burst < 1:
        raise ValueError(f"a token bucket needs rate > 0 and burst >= 1, not {rate}, {burst}")


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float  # when ``tokens`` was counted
    full_at: float  # when it will have refilled: then it can be forgotten


class InMemoryRateLimiter:
    def __init__(
        self, clock: Callable[[], float] = time.monotonic, *, max_keys: int = 100_000
    ) -> None:
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: dict[str, _Bucket] = {}

    async def take(self, key: str, rate: float, burst: int) -> float:
        return self.apply(key, rate, burst, cost=1)

    async def peek(self, key: str, rate: float, burst: int) -> float:
        return self.apply(key, rate, burst, cost=0)

    async def reset(self, key: str) -> None:
        self._buckets.pop(key, None)

    async def close(self) -> None:
        """Nothing to release: the buckets go with the process."""

    def apply(self, key: str, rate: float, burst: int, *, cost: int) -> float:
        """The token bucket (the Redis adapter's script does the same): 0 and ``cost``
        tokens fewer when one token is there, else the wait for one."""
        check_bucket(rate, burst)
        now = self._clock()
        bucket = self._buckets.get(key)
        tokens = (
            float(burst) if bucket is None else min(burst, bucket.tokens + (now - bucket.at) * rate)
        )
        if tokens < 1:
            return (1 - tokens) / rate
        if cost:
            tokens -= cost
            if key not in self._buckets and len(self._buckets) >= self._max_keys:
                self._forget(now)
            self._buckets[key] = _Bucket(tokens, now, now + (burst - tokens) / rate)
        return 0.0

    def _forget(self, now: float) -> None:
        """Drop the refilled buckets, and if that is not enough the half nearest to full."""
        for key in [key for key, bucket in self._buckets.items() if bucket.full_at <= now]:
            del self._buckets[key]
        if len(self._buckets) >= self._max_keys:
            by_fullness = sorted(self._buckets, key=lambda key: self._buckets[key].full_at)
            for key in by_fullness[: len(by_fullness) // 2 + 1]:
                del self._buckets[key]

    def __len__(self) -> int:
        return len(self._buckets)
