"""The ports of notifications: the rules and deliveries stored, and the channels that send.

``UnitOfWork.notifications`` is a ``NotificationRepository``. The unit of work queues the
deliveries itself at ``commit`` (one per matching rule of each build that finished in that
transaction); the notification sender reads, sends and settles them here.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from ferrous.domain.notification import (
    BuildNotice,
    DeliveryResult,
    DueNotification,
    NotificationDelivery,
    NotificationRule,
    SendResult,
)


class NotificationRepository(Protocol):
    async def add_rule(self, rule: NotificationRule) -> None: ...

    async def get_rule(self, project_id: str, rule_id: str) -> NotificationRule:
        """Raises ``NotFound`` for a rule of another project too."""
        ...

    async def list_rules(self, project_id: str) -> list[NotificationRule]:
        """Oldest first."""
        ...

    async def save_rule(self, rule: NotificationRule) -> None: ...

    async def remove_rule(self, project_id: str, rule_id: str) -> None:
        """Removes the rule and its deliveries; raises ``NotFound``."""
        ...

    async def queue_test(
        self, rule: NotificationRule, notice: BuildNotice, now: datetime
    ) -> NotificationDelivery:
        """Queue a ``ping`` delivery of ``notice`` for ``rule``, due now."""
        ...

    async def deliveries(
        self, rule_id: str, limit: int, before: str | None = None
    ) -> list[NotificationDelivery]:
        """The rule's delivery log, newest first (by creation, then id); ``before``: the id
        of the last delivery of the previous page."""
        ...

    async def due(self, now: datetime, limit: int) -> list[DueNotification]:
        """Pending deliveries due at ``now``, oldest first (secrets still sealed)."""
        ...

    async def settle(self, results: Sequence[DeliveryResult]) -> None:
        """Record each attempt: delivered, failed, or due again at ``next_attempt_at``."""
        ...

    async def prune(self, before: datetime) -> int:
        """Delete settled deliveries created before ``before``; returns how many."""
        ...


class NotificationChannel(Protocol):
    """Sends one delivery over one kind of channel (webhook, Slack, email).

    ``send`` returns what happened (delivered, retry later, refused) rather than raising;
    it puts ``delivery.delivery_id`` where the receiver can see it (a header, the
    Message-ID), so a resend is recognisable. Safe to call concurrently; ``close`` ends it.
    """

    async def send(self, delivery: DueNotification) -> SendResult: ...

    async def close(self) -> None: ...
