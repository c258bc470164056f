"""What guards the API from the outside: the audit log of changes and the rate limiter.

Ports like those in ``ports``, kept apart because only the API's edge uses them.
"""

from __future__ import annotations

from typing import Protocol

from ferrous.application.queries import Page
from ferrous.domain.audit import AuditEntry, AuditFilter


class AuditLog(Protocol):
    """The append-only audit log (``domain.audit``), apart from the units of work.

    An entry is written after the request's own transaction, in one of its own, so that a
    refused or failed change is recorded as well as a committed one. There is no update and
    no delete: nothing in the server can rewrite the history.
    """

    async def record(self, entry: AuditEntry) -> None:
        """Store one entry; raises StorageError when the store cannot take it."""
        ...

    async def query(
        self, filters: AuditFilter, *, cursor: str | None = None, limit: int = 50
    ) -> Page[AuditEntry]:
        """Entries matching ``filters``, newest first; ``next_cursor`` pages on to older
        ones. A cursor this log did not make raises NotFound."""
        ...


class RateLimiter(Protocol):
    """Token buckets by key: a bucket holds up to ``burst`` tokens and refills at ``rate``
    tokens per second; a new key starts full. Several servers given the same shared store
    (Redis) share the buckets; each call is atomic.
    """

    async def take(self, key: str, rate: float, burst: int) -> float:
        """Take one token: 0 when there was one, else the seconds until there will be one
        (nothing is taken then)."""
        ...

    async def peek(self, key: str, rate: float, burst: int) -> float:
        """What ``take`` would answer, taking nothing (a login is checked before it is
        known to have failed)."""
        ...

    async def reset(self, key: str) -> None:
        """Fill the bucket again (a successful login clears its account's failures)."""
        ...

    async def close(self) -> None: ...
