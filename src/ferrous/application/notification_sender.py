"""The notification sender: sends the queued notification deliveries over their channels.

Deliveries are queued by the unit of work in the transaction that finished a build (the
outbox), so they survive any crash; this singleton (one server of a cluster runs it) sends
the due ones. A pass reads them in one short transaction, sends them with no transaction
open, and records each outcome in another. A server that dies between sending and recording
sends that delivery again later, with the same delivery id (``X-Ferrous-Delivery``, the
email's Message-ID), so the receiver can tell: at least once, recorded exactly once.

Failures: a delivery the receiver may take later (5xx, 408, 429, no connection) is tried
again after 1, 2, 4, ... seconds (capped at ``MAX_DELAY``, or the receiver's
``Retry-After``); after ``MAX_ATTEMPTS`` it is failed. A refusal (another 4xx, a rejected
address) fails at once, with the receiver's answer kept as ``last_error``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

import structlog

from ferrous.application.dependencies import Dependencies
from ferrous.application.notification_ports import NotificationChannel
from ferrous.application.outgoing import IDLE, backoff, build_url, run_sender, send_all
from ferrous.application.ports import SecretBox, UnitOfWork
from ferrous.application.signals import Flag
from ferrous.domain.errors import ConfigInvalid, FerrousError
from ferrous.domain.notification import (
    DeliveryResult,
    DeliveryStatus,
    DueNotification,
    NotificationRule,
    NotifyChannel,
    SendOutcome,
    SendResult,
)

log = structlog.get_logger(__name__)

BATCH = 50
CONCURRENCY = 8  # deliveries in flight per pass
MAX_DELAY = 600.0
MAX_ATTEMPTS = 8
KEEP = timedelta(days=30)  # settled deliveries (the delivery log) are deleted after this
PRUNE_EVERY = timedelta(hours=1)
ERROR_MAX = 1000  # characters of a receiver's answer kept as ``last_error``


def _secret_context(rule_id: str) -> bytes:
    return f"notification-rule:{rule_id}:secret".encode()


def seal_rule_secret(rule_id: str, secret: str, box: SecretBox | None) -> str:
    if box is None:
        raise ConfigInvalid("this server has no secret box: rules cannot hold webhook secrets")
    return box.encrypt(secret.encode(), context=_secret_context(rule_id))


def open_rule_secret(rule: NotificationRule | DueNotification, box: SecretBox | None) -> str | None:
    if rule.secret is None:
        return None
    rule_id = rule.id if isinstance(rule, NotificationRule) else rule.rule_id
    if box is None:
        raise ConfigInvalid(f"notification rule {rule_id} has a secret but no secret box")
    return box.decrypt(rule.secret, context=_secret_context(rule_id)).decode()


class NotificationSender:
    def __init__(
        self,
        uow_factory: Callable[[], UnitOfWork],
        channels: Mapping[NotifyChannel, NotificationChannel],
        deps: Dependencies,
    ) -> None:
        self._uow_factory = uow_factory
        self._channels = dict(channels)
        self._deps = deps
        self._pruned_at: datetime | None = None

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()

    async def send_due(self, limit: int = BATCH) -> int:
        """One pass: send what is due; returns how many deliveries were tried."""
        now = self._deps.clock.now()
        async with self._uow_factory() as uow:
            due = await uow.notifications.due(now, limit)
            if self._pruned_at is None or now - self._pruned_at >= PRUNE_EVERY:
                if await uow.notifications.prune(now - KEEP):
                    await uow.commit()
                self._pruned_at = now
        if not due:
            return 0
        results = await send_all(due, self._send, CONCURRENCY)
        async with self._uow_factory() as uow:
            await uow.notifications.settle(results)
            await uow.commit()
        return len(due)

    async def _send(self, delivery: DueNotification) -> DeliveryResult:
        attempts = delivery.attempts + 1
        fields = {
            "delivery_id": delivery.delivery_id,
            "rule_id": delivery.rule_id,
            "channel": delivery.channel.value,
        }
        channel = self._channels.get(delivery.channel)
        try:
            if channel is None:
                raise FerrousError(f"{delivery.channel.value} notifications are off on this server")
            notice = delivery.notice
            url = self._deps.server_url.rstrip("/")
            if delivery.notice.build_number:  # not a test delivery's made-up build
                url = build_url(url, notice.build_id)
            notice = dataclasses.replace(notice, url=url)
            opened = dataclasses.replace(
                delivery, notice=notice, secret=open_rule_secret(delivery, self._deps.secret_box)
            )
            result = await channel.send(opened)
        except FerrousError as exc:
            result = SendResult(outcome=SendOutcome.REFUSED, error=exc.message)
        except Exception as exc:  # a channel's bug must not stop the others' deliveries
            log.exception("notification_channel_failed", **fields)
            result = SendResult(outcome=SendOutcome.RETRY, error=repr(exc))
        at = self._deps.clock.now()
        error = result.error[:ERROR_MAX] if result.error else None
        if result.outcome is SendOutcome.DELIVERED:
            log.info("notification_delivered", **fields, attempt=attempts)
            return DeliveryResult(
                delivery_id=delivery.delivery_id,
                attempts=attempts,
                at=at,
                status=DeliveryStatus.DELIVERED,
                response_status=result.response_status,
            )
        if result.outcome is SendOutcome.RETRY and attempts < MAX_ATTEMPTS:
            delay = backoff(attempts, result.retry_after, cap=MAX_DELAY)
            log.info("notification_retry", **fields, attempt=attempts, error=error)
            return DeliveryResult(
                delivery_id=delivery.delivery_id,
                attempts=attempts,
                at=at,
                status=DeliveryStatus.PENDING,
                next_attempt_at=at + timedelta(seconds=delay),
                response_status=result.response_status,
                error=error,
            )
        log.warning("notification_failed", **fields, attempt=attempts, error=error)
        return DeliveryResult(
            delivery_id=delivery.delivery_id,
            attempts=attempts,
            at=at,
            status=DeliveryStatus.FAILED,
            response_status=result.response_status,
            error=error,
        )


async def run_notification_sender(
    sender: NotificationSender, nudge: Flag, idle: float = IDLE
) -> None:
    """Send due deliveries; woken after builds finish on this server, else every ``idle``
    seconds (deliveries queued by other servers, retries coming due)."""
    await run_sender("notification_sender", sender.send_due, nudge, batch=BATCH, idle=idle)
