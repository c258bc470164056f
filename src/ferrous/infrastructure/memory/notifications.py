"""In-memory notification rules and deliveries, with the SQL adapter's rules: deliveries are
queued at commit for the builds that finished (one per rule, build and completion), settled
by the sender; every change is staged and applied by the unit of work's commit.

The tables hang off the store in a side table of their own (``tables``), so the store's
shape is not touched by this feature.
"""

from __future__ import annotations

import dataclasses
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from ferrous.application.notifications import (
    FINAL,
    PlannedDelivery,
    plan_deliveries,
    trial_delivery,
)
from ferrous.domain.build import Build
from ferrous.domain.errors import NotFound
from ferrous.domain.notification import (
    BuildNotice,
    DeliveryResult,
    DeliveryStatus,
    DueNotification,
    NotificationDelivery,
    NotificationRule,
)
from ferrous.infrastructure.memory.store import InMemoryStore


@dataclass(eq=False, kw_only=True)
class StoredDelivery:
    planned: PlannedDelivery
    view: NotificationDelivery


@dataclass(eq=False)
class NotificationTables:
    rules: dict[str, NotificationRule] = field(default_factory=dict)
    deliveries: dict[str, StoredDelivery] = field(default_factory=dict)
    keys: set[tuple[str, str, int]] = field(default_factory=set)  # (rule, build, completion)


_TABLES: weakref.WeakKeyDictionary[InMemoryStore, NotificationTables] = weakref.WeakKeyDictionary()


def tables(store: InMemoryStore) -> NotificationTables:
    found = _TABLES.get(store)
    if found is None:
        found = _TABLES[store] = NotificationTables()
    return found


def _stored(planned: PlannedDelivery) -> StoredDelivery:
    view = NotificationDelivery(
        id=planned.id,
        rule_id=planned.rule_id,
        build_id=planned.build_id,
        event=planned.event,
        status=DeliveryStatus.PENDING,
        attempts=0,
        next_attempt_at=planned.created_at,
        last_error=None,
        response_status=None,
        created_at=planned.created_at,
    )
    return StoredDelivery(planned=planned, view=view)


def queue_build_notifications(
    store: InMemoryStore, finished: Sequence[Build], now: datetime
) -> None:
    """Called by the unit of work's commit, once the builds are in ``store``."""
    t = tables(store)
    for build in finished:
        rules = [r for r in t.rules.values() if r.project_id == build.project_id and r.enabled]
        project = store.projects.get(build.project_id)
        pipeline = store.pipelines.get(build.pipeline_id)
        if not rules or project is None or pipeline is None:
            continue
        earlier = [
            b
            for b in store.builds.values()
            if b.pipeline_id == build.pipeline_id
            and b.ref == build.ref
            and b.number < build.number
            and b.status.value in FINAL
        ]
        previous = max(earlier, key=lambda b: b.number).status.value if earlier else None
        for planned in plan_deliveries(
            build,
            rules,
            project_name=project.name,
            pipeline_name=pipeline.name,
            previous_status=previous,
            now=now,
        ):
            key = (planned.rule_id, build.id, build.version)
            if key not in t.keys:
                t.keys.add(key)
                t.deliveries[planned.id] = _stored(planned)


class InMemoryNotificationRepository:
    def __init__(self, store: InMemoryStore) -> None:
        self._store = store
        self._rules: dict[str, NotificationRule | None] = {}  # None: removed
        self._added: list[StoredDelivery] = []
        self._settled: list[DeliveryResult] = []
        self._pruned: set[str] = set()

    def _rule(self, rule_id: str) -> NotificationRule | None:
        if rule_id in self._rules:
            return self._rules[rule_id]
        return tables(self._store).rules.get(rule_id)

    async def add_rule(self, rule: NotificationRule) -> None:
        self._rules[rule.id] = rule

    async def get_rule(self, project_id: str, rule_id: str) -> NotificationRule:
        rule = self._rule(rule_id)
        if rule is None or rule.project_id != project_id:
            raise NotFound(f"no notification rule {rule_id}")
        return rule

    async def list_rules(self, project_id: str) -> list[NotificationRule]:
        ids = set(tables(self._store).rules) | set(self._rules)
        found = [self._rule(i) for i in ids]
        rules = [r for r in found if r is not None and r.project_id == project_id]
        return sorted(rules, key=lambda r: (r.created_at, r.id))

    async def save_rule(self, rule: NotificationRule) -> None:
        await self.get_rule(rule.project_id, rule.id)
        self._rules[rule.id] = rule

    async def remove_rule(self, project_id: str, rule_id: str) -> None:
        await self.get_rule(project_id, rule_id)
        self._rules[rule_id] = None

    async def queue_test(
        self, rule: NotificationRule, notice: BuildNotice, now: datetime
    ) -> NotificationDelivery:
        stored = _stored(trial_delivery(rule, notice, now))
        self._added.append(stored)
        return stored.view

    async def deliveries(
        self, rule_id: str, limit: int, before: str | None = None
    ) -> list[NotificationDelivery]:
        every = list(tables(self._store).deliveries.values()) + self._added
        views = sorted(
            (s.view for s in every if s.view.rule_id == rule_id),
            key=lambda v: (v.created_at, v.id),
            reverse=True,
        )
        if before is not None:
            marks = [i for i, v in enumerate(views) if v.id == before]
            views = views[marks[0] + 1 :] if marks else []
        return views[:limit]

    async def due(self, now: datetime, limit: int) -> list[DueNotification]:
        t = tables(self._store)
        due = [
            s
            for s in t.deliveries.values()
            if s.view.next_attempt_at is not None and s.view.next_attempt_at <= now
        ]
        due.sort(key=lambda s: (s.view.next_attempt_at or now, s.view.id))
        found = []
        for s in due[:limit]:
            rule = t.rules.get(s.planned.rule_id)
            if rule is None:
                continue
            found.append(
                DueNotification(
                    delivery_id=s.view.id,
                    rule_id=rule.id,
                    project_id=rule.project_id,
                    channel=rule.channel,
                    target=rule.target,
                    secret=rule.secret,
                    event=s.view.event,
                    notice=s.planned.notice,
                    attempts=s.view.attempts,
                    created_at=s.view.created_at,
                )
            )
        return found

    async def settle(self, results: Sequence[DeliveryResult]) -> None:
        self._settled += results

    async def prune(self, before: datetime) -> int:
        old = {
            s.view.id
            for s in tables(self._store).deliveries.values()
            if s.view.next_attempt_at is None and s.view.created_at < before
        }
        self._pruned |= old
        return len(old)

    def apply(self) -> None:
        """On commit (no await in between)."""
        t = tables(self._store)
        for rule_id, rule in self._rules.items():
            if rule is None:
                t.rules.pop(rule_id, None)
                for gone in [k for k, s in t.deliveries.items() if s.view.rule_id == rule_id]:
                    del t.deliveries[gone]
            else:
                t.rules[rule_id] = rule
        for stored in self._added:
            t.deliveries[stored.view.id] = stored
        for res in self._settled:
            found = t.deliveries.get(res.delivery_id)
            if found is not None:
                found.view = _settled(found.view, res)
        for gone in self._pruned:
            t.deliveries.pop(gone, None)
        self._rules, self._added, self._settled, self._pruned = {}, [], [], set()


def _settled(view: NotificationDelivery, res: DeliveryResult) -> NotificationDelivery:
    pending = res.status is DeliveryStatus.PENDING
    return dataclasses.replace(
        view,
        status=res.status,
        attempts=res.attempts,
        next_attempt_at=res.next_attempt_at if pending else None,
        last_error=res.error,
        response_status=res.response_status,
        delivered_at=res.at if res.status is DeliveryStatus.DELIVERED else None,
    )
