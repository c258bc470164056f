"""A project's maintainer manages its notification rules, and asks for a test delivery.

A rule's webhook secret is sealed by the secret box, bound to the rule, like a project's
webhook secret: it signs the bodies sent and is never shown again.
"""

from __future__ import annotations

import dataclasses

from ferrous.application.commands import (
    CreateNotificationRule,
    DeleteNotificationRule,
    SendTestNotification,
    UpdateNotificationRule,
)
from ferrous.application.dependencies import Dependencies
from ferrous.application.notification_sender import seal_rule_secret
from ferrous.application.notifications import sample_notice
from ferrous.application.ports import UnitOfWork
from ferrous.domain.errors import InvalidValue
from ferrous.domain.notification import (
    NotificationDelivery,
    NotificationRule,
    NotifyChannel,
    NotifyOn,
)

SECRET_MIN = 16
SECRET_MAX = 1000


def _on(values: frozenset[str]) -> frozenset[NotifyOn]:
    try:
        return frozenset(NotifyOn(v) for v in values)
    except ValueError as exc:
        raise InvalidValue(f"on: {exc}; use failure, recovery, success or always") from exc


def _secret(rule: NotificationRule, secret: str, deps: Dependencies) -> str | None:
    if not secret:
        return None
    if rule.channel is not NotifyChannel.WEBHOOK:
        raise InvalidValue("only webhook rules sign what they send: a secret is for them")
    if not SECRET_MIN <= len(secret) <= SECRET_MAX or not secret.isprintable():
        raise InvalidValue(f"a secret is {SECRET_MIN} to {SECRET_MAX} printable characters")
    return seal_rule_secret(rule.id, secret, deps.secret_box)


async def create_notification_rule(
    cmd: CreateNotificationRule, uow: UnitOfWork, deps: Dependencies
) -> NotificationRule:
    project = await uow.projects.get(cmd.project_id)
    try:
        channel = NotifyChannel(cmd.channel)
    except ValueError as exc:
        raise InvalidValue("channel: use webhook, slack or email") from exc
    rule = NotificationRule.create(
        project_id=project.id,
        name=cmd.name,
        channel=channel,
        target=cmd.target.strip(),
        on=_on(cmd.on),
        branches=tuple(cmd.branches),
        enabled=cmd.enabled,
        created_at=deps.clock.now(),
    )
    if cmd.secret:
        rule = dataclasses.replace(rule, secret=_secret(rule, cmd.secret, deps))
    await uow.notifications.add_rule(rule)
    await uow.commit()
    return rule


async def update_notification_rule(
    cmd: UpdateNotificationRule, uow: UnitOfWork, deps: Dependencies
) -> NotificationRule:
    rule = await uow.notifications.get_rule(cmd.project_id, cmd.rule_id)
    changes: dict[str, object] = {}
    if cmd.name is not None:
        changes["name"] = cmd.name
    if cmd.target is not None:
        changes["target"] = cmd.target.strip()
    if cmd.on is not None:
        changes["on"] = _on(cmd.on)
    if cmd.branches is not None:
        changes["branches"] = tuple(cmd.branches)
    if cmd.enabled is not None:
        changes["enabled"] = cmd.enabled
    if cmd.secret is not None:
        changes["secret"] = _secret(rule, cmd.secret, deps)
    # each value was checked for its field above; a dict of them cannot say so
    rule = dataclasses.replace(rule, **changes)  # type: ignore[arg-type]
    rule.check()
    await uow.notifications.save_rule(rule)
    await uow.commit()
    return rule


async def delete_notification_rule(
    cmd: DeleteNotificationRule, uow: UnitOfWork, deps: Dependencies
) -> None:
    """Its queued deliveries go with it: nothing more is sent for it."""
    await uow.notifications.remove_rule(cmd.project_id, cmd.rule_id)
    await uow.commit()


async def send_test_notification(
    cmd: SendTestNotification, uow: UnitOfWork, deps: Dependencies
) -> NotificationDelivery:
    rule = await uow.notifications.get_rule(cmd.project_id, cmd.rule_id)
    project = await uow.projects.get(cmd.project_id)
    delivery = await uow.notifications.queue_test(
        rule, sample_notice(project.id, project.name), deps.clock.now()
    )
    await uow.commit()
    return delivery
