"""The ports of commit statuses: the reports queued for the forges, and the forges' APIs.

Kept apart from ``ports`` only to keep that module small; ``UnitOfWork.status_reports`` is a
``StatusReportRepository``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from ferrous.domain.commit_status import CommitStatus, DueReport, ReportResult
from ferrous.domain.forge import ForgeTarget


class StatusReportRepository(Protocol):
    """Commit status reports queued for the forges (``domain.commit_status``).

    The unit of work queues them itself at ``commit``, one for each build saved with a new
    state; the status sender reads and settles them here.
    """

    async def due(self, now: datetime, limit: int) -> list[DueReport]:
        """Reports to send now, oldest first, with their projects' forges.

        First settles as superseded every unsent report that has a newer one for the same
        project, commit and context (a write: commit the unit of work afterwards).
        """
        ...

    async def settle(self, results: Sequence[ReportResult]) -> None:
        """Record each attempt: sent, given up, or due again at ``next_attempt_at``."""
        ...

    async def prune(self, before: datetime) -> int:
        """Delete settled reports created before ``before``; returns how many."""
        ...


class CommitStatusClient(Protocol):
    """Posts commit statuses to forges' APIs (GitHub, GitLab, Gitea).

    ``post`` returns when the forge took the status and raises ``StatusNotDelivered`` when
    it did not, saying whether trying again may help (``retryable``, ``retry_after``).
    Safe to call concurrently; ``close`` ends it.
    """

    async def post(self, target: ForgeTarget, token: str, status: CommitStatus) -> None: ...

    async def close(self) -> None: ...
