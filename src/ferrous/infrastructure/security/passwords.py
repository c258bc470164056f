"""Passwords hashed with Argon2id (argon2-cffi), off the event loop.

The default parameters are RFC 9106's "low memory" choice (3 passes over 64 MiB): about
50 ms of one core per hash. Hashes run on a small thread pool of their own, so that a burst
of sign-ins neither blocks the event loop nor takes 64 MiB per thread of the default pool.
A password checked for a user that does not exist is checked against a hash of a random
password made with the same parameters: it takes as long as a real check, so response times
tell nothing about which usernames exist. A stored hash made with other parameters is
reported by ``needs_rehash`` and replaced at the next sign-in.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import argon2
import structlog
from argon2 import Parameters
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from argon2.profiles import RFC_9106_LOW_MEMORY

log = structlog.get_logger(__name__)

T = TypeVar("T")


class Argon2PasswordHasher:
    def __init__(self, parameters: Parameters = RFC_9106_LOW_MEMORY, workers: int = 0) -> None:
        self._hasher = argon2.PasswordHasher.from_parameters(parameters)
        self._pool = ThreadPoolExecutor(
            max_workers=workers or max(1, min(4, os.cpu_count() or 1)),
            thread_name_prefix="argon2",
        )
        self._decoy = self._hasher.hash(secrets.token_urlsafe(16))

    async def hash(self, password: str) -> str:
        return await self._run(self._hasher.hash, password)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        if password_hash is None:
            await self._run(self._check, self._decoy, password)
            return False
        return await self._run(self._check, password_hash, password)

    def needs_rehash(self, password_hash: str) -> bool:
        try:
            return self._hasher.check_needs_rehash(password_hash)
        except InvalidHashError:
            return True

    def close(self) -> None:
        self._pool.shutdown(wait=False)

    def _check(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except VerifyMismatchError:
            return False
        except (InvalidHashError, VerificationError):
            log.warning("password_hash_unreadable")  # a stored hash that is not argon2
            return False

    async def _run(self, function: Callable[..., T], *args: str) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, function, *args)
