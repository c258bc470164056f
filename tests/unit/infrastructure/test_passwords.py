"""Argon2id password hashes: round trip, salts, rehash on weaker parameters, no user."""

from __future__ import annotations

import time

import argon2
from argon2.profiles import CHEAPEST

from ferrous.infrastructure.security.passwords import Argon2PasswordHasher


async def test_a_hash_verifies_its_password_only() -> None:
    hasher = Argon2PasswordHasher(CHEAPEST)
    first = await hasher.hash("correct horse")
    second = await hasher.hash("correct horse")

    assert first.startswith("$argon2id$")
    assert first != second  # salted
    assert "correct horse" not in first
    assert await hasher.verify(first, "correct horse")
    assert await hasher.verify(second, "correct horse")
    assert not await hasher.verify(first, "correct horse ")
    assert not await hasher.verify(first, "")
    assert not await hasher.verify("not a hash", "correct horse")
    assert not await hasher.verify(None, "correct horse")


async def test_the_default_parameters_are_rfc_9106s() -> None:
    hasher = Argon2PasswordHasher()
    stored = await hasher.hash("pw")
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert not hasher.needs_rehash(stored)


async def test_weaker_hashes_need_a_rehash() -> None:
    hasher = Argon2PasswordHasher(CHEAPEST)
    current = await hasher.hash("pw")
    assert not hasher.needs_rehash(current)
    weaker = argon2.PasswordHasher(time_cost=1, memory_cost=8, parallelism=1, hash_len=8)
    old = weaker.hash("pw")
    assert hasher.needs_rehash(old)
    assert await hasher.verify(old, "pw")  # still accepted until it is replaced
    assert hasher.needs_rehash("$bcrypt$whatever")


async def test_checking_for_nobody_takes_as_long_as_checking_a_password() -> None:
    hasher = Argon2PasswordHasher()  # the real cost: differences would show
    stored = await hasher.hash("pw")

    async def timed(password_hash: str | None) -> float:
        start = time.perf_counter()
        await hasher.verify(password_hash, "wrong")
        return time.perf_counter() - start

    real = min([await timed(stored) for _ in range(3)])
    nobody = min([await timed(None) for _ in range(3)])
    assert nobody > real / 3  # a hash was computed, not skipped
