"""Notification rules and deliveries: queued by the unit of work's commit, sent by the sender.

``queue_build_notifications`` runs inside ``SqlUnitOfWork.commit`` for the builds that
finished in that transaction: one read of the project's enabled rules (most projects have
none, and then that is all), the previous finished build of the same pipeline and ref, and an
``INSERT ... ON CONFLICT DO NOTHING`` on (rule, build, completion), so a repeated commit of
the same completion queues nothing twice.

The sender is a singleton, so ``due`` does not lock.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, and_, bindparam, delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from ferrous.application.notifications import (
    FINAL,
    PlannedDelivery,
    plan_deliveries,
    trial_delivery,
)
from ferrous.domain.build import Build
from ferrous.domain.errors import NotFound
from ferrous.domain.notification import (
    EVENT_TEST,
    BuildNotice,
    DeliveryResult,
    DeliveryStatus,
    DueNotification,
    NotificationDelivery,
    NotificationRule,
    NotifyChannel,
    NotifyOn,
)
from ferrous.infrastructure.sql.schema import (
    builds,
    notification_deliveries,
    notification_rules,
    pipelines,
    projects,
)
from ferrous.infrastructure.sql.session import SqlSession

r = notification_rules.c
d = notification_deliveries.c
_INSERT = {
    "postgresql": postgresql.insert(notification_deliveries).on_conflict_do_nothing(),
    "sqlite": sqlite.insert(notification_deliveries).on_conflict_do_nothing(),
}
_DUE = (
    select(
        notification_deliveries,
        r.channel,
        r.target,
        r.secret,
    )
    .join(notification_rules, r.id == d.rule_id)
    .where(d.next_attempt_at <= bindparam("now", type_=d.next_attempt_at.type))
    .order_by(d.next_attempt_at, d.id)
    .limit(bindparam("limit"))
)
_SETTLE = (
    update(notification_deliveries)
    .where(d.id == bindparam("b_id"))
    .values(
        status=bindparam("b_status"),
        attempts=bindparam("b_attempts"),
        next_attempt_at=bindparam("b_next_attempt_at"),
        last_error=bindparam("b_last_error"),
        response_status=bindparam("b_response_status"),
        delivered_at=bindparam("b_delivered_at"),
    )
)
_DELIVERY_COLUMNS = [
    d.id,
    d.rule_id,
    d.build_id,
    d.event,
    d.status,
    d.attempts,
    d.next_attempt_at,
    d.last_error,
    d.response_status,
    d.created_at,
    d.delivered_at,
]


def rule_of_row(row: Row[Any]) -> NotificationRule:
    return NotificationRule(
        id=row.id,
        project_id=row.project_id,
        name=row.name,
        channel=NotifyChannel(row.channel),
        target=row.target,
        on=frozenset(NotifyOn(o) for o in row.on_events),
        branches=tuple(row.branches),
        enabled=row.enabled,
        secret=row.secret,
        created_at=row.created_at,
    )


def _rule_values(rule: NotificationRule) -> dict[str, Any]:
    return {
        "name": rule.name,
        "channel": rule.channel.value,
        "target": rule.target,
        "on_events": sorted(o.value for o in rule.on),
        "branches": list(rule.branches),
        "enabled": rule.enabled,
        "secret": rule.secret,
    }


def delivery_row(planned: PlannedDelivery) -> dict[str, Any]:
    return {
        "id": planned.id,
        "rule_id": planned.rule_id,
        "project_id": planned.project_id,
        "build_id": planned.build_id,
        "completion": planned.completion,
        "event": planned.event,
        "payload": planned.notice.to_json(),
        "status": DeliveryStatus.PENDING.value,
        "attempts": 0,
        "next_attempt_at": planned.created_at,
        "created_at": planned.created_at,
    }


def _delivery(row: Row[Any]) -> NotificationDelivery:
    return NotificationDelivery(
        id=row.id,
        rule_id=row.rule_id,
        build_id=row.build_id,
        event=row.event,
        status=DeliveryStatus(row.status),
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        last_error=row.last_error,
        response_status=row.response_status,
        created_at=row.created_at,
        delivered_at=row.delivered_at,
    )


async def queue_build_notifications(
    session: SqlSession, finished: Sequence[Build], now: datetime
) -> None:
    """Queue the deliveries of each finished build's matching rules (in the commit)."""
    rows: list[dict[str, Any]] = []
    for build in finished:
        found = await session.execute(
            select(notification_rules).where(r.project_id == build.project_id, r.enabled),
            write=True,
        )
        rules = [rule_of_row(row) for row in found]
        if not rules:
            continue
        names = (
            await session.execute(
                select(projects.c.name, pipelines.c.name.label("pipeline_name"))
                .select_from(projects.join(pipelines, pipelines.c.project_id == projects.c.id))
                .where(projects.c.id == build.project_id, pipelines.c.id == build.pipeline_id),
                write=True,
            )
        ).first()
        if names is None:
            continue
        previous = (
            await session.execute(
                select(builds.c.status)
                .where(
                    builds.c.pipeline_id == build.pipeline_id,
                    builds.c.ref == build.ref,
                    builds.c.number < build.number,
                    builds.c.status.in_(FINAL),
                )
                .order_by(builds.c.number.desc())
                .limit(1),
                write=True,
            )
        ).scalar()
        planned = plan_deliveries(
            build,
            rules,
            project_name=names.name,
            pipeline_name=names.pipeline_name,
            previous_status=previous,
            now=now,
        )
        rows += [delivery_row(p) for p in planned]
    if rows:
        await session.execute_write(_INSERT[session.dialect], rows)


class SqlNotificationRepository:
    def __init__(self, session: SqlSession) -> None:
        self._session = session

    async def add_rule(self, rule: NotificationRule) -> None:
        await self._session.execute_write(
            notification_rules.insert().values(
                id=rule.id,
                project_id=rule.project_id,
                created_at=rule.created_at,
                **_rule_values(rule),
            )
        )

    async def get_rule(self, project_id: str, rule_id: str) -> NotificationRule:
        row = (
            await self._session.execute(
                select(notification_rules).where(r.id == rule_id, r.project_id == project_id)
            )
        ).first()
        if row is None:
            raise NotFound(f"no notification rule {rule_id}")
        return rule_of_row(row)

    async def list_rules(self, project_id: str) -> list[NotificationRule]:
        rows = await self._session.execute(
            select(notification_rules)
            .where(r.project_id == project_id)
            .order_by(r.created_at, r.id)
        )
        return [rule_of_row(row) for row in rows]

    async def save_rule(self, rule: NotificationRule) -> None:
        matched = await self._session.execute_write(
            update(notification_rules)
            .where(r.id == rule.id, r.project_id == rule.project_id)
            .values(**_rule_values(rule))
        )
        if not matched:
            raise NotFound(f"no notification rule {rule.id}")

    async def remove_rule(self, project_id: str, rule_id: str) -> None:
        # deliveries first: SQLite enforces the foreign keys only when asked to
        await self._session.execute_write(
            delete(notification_deliveries).where(
                d.rule_id == rule_id,
                d.project_id == project_id,
            )
        )
        matched = await self._session.execute_write(
            delete(notification_rules).where(r.id == rule_id, r.project_id == project_id)
        )
        if not matched:
            raise NotFound(f"no notification rule {rule_id}")

    async def queue_test(
        self, rule: NotificationRule, notice: BuildNotice, now: datetime
    ) -> NotificationDelivery:
        planned = trial_delivery(rule, notice, now)
        await self._session.execute_write(notification_deliveries.insert(), delivery_row(planned))
        return NotificationDelivery(
            id=planned.id,
            rule_id=rule.id,
            build_id=None,
            event=EVENT_TEST,
            status=DeliveryStatus.PENDING,
            attempts=0,
            next_attempt_at=now,
            last_error=None,
            response_status=None,
            created_at=now,
        )

    async def deliveries(
        self, rule_id: str, limit: int, before: str | None = None
    ) -> list[NotificationDelivery]:
        query = select(*_DELIVERY_COLUMNS).where(d.rule_id == rule_id)
        if before is not None:
            mark = select(d.created_at).where(d.id == before).scalar_subquery()
            query = query.where(or_(d.created_at < mark, and_(d.created_at == mark, d.id < before)))
        order = (d.created_at.desc(), d.id.desc())
        rows = await self._session.execute(query.order_by(*order).limit(limit))
        return [_delivery(row) for row in rows]

    async def due(self, now: datetime, limit: int) -> list[DueNotification]:
        rows = await self._session.execute(_DUE, {"now": now, "limit": limit})
        return [
            DueNotification(
                delivery_id=row.id,
                rule_id=row.rule_id,
                project_id=row.project_id,
                channel=NotifyChannel(row.channel),
                target=row.target,
                secret=row.secret,
                event=row.event,
                notice=BuildNotice.from_json(row.payload),
                attempts=row.attempts,
                created_at=row.created_at,
            )
            for row in rows
        ]

    async def settle(self, results: Sequence[DeliveryResult]) -> None:
        if not results:
            return
        await self._session.execute_write(
            _SETTLE,
            [
                {
                    "b_id": res.delivery_id,
                    "b_status": res.status.value,
                    "b_attempts": res.attempts,
                    "b_next_attempt_at": (
                        res.next_attempt_at if res.status is DeliveryStatus.PENDING else None
                    ),
                    "b_last_error": res.error,
                    "b_response_status": res.response_status,
                    "b_delivered_at": res.at if res.status is DeliveryStatus.DELIVERED else None,
                }
                for res in results
            ],
        )

    async def prune(self, before: datetime) -> int:
        return await self._session.execute_write(
            delete(notification_deliveries).where(
                d.next_attempt_at.is_(None), d.created_at < before
            )
        )
