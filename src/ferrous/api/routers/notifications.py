"""Notification rules: who hears of a project's builds, and the log of what was sent.

Managing needs ``projects:write`` (like the project's own webhook settings); reading,
``projects:read``. Secrets are write-only and a Slack webhook URL (a credential) is shown
as its host only. ``POST .../test`` queues a ``ping`` delivery, sent by the notification
sender like any other: its outcome shows in the delivery log.
"""

from __future__ import annotations

from fastapi import APIRouter, Query, Response

from ferrous.api.permissions import require
from ferrous.api.schemas.common import problems
from ferrous.api.schemas.notifications import (
    NotificationDeliveryList,
    NotificationDeliveryOut,
    NotificationRuleCreate,
    NotificationRuleList,
    NotificationRuleOut,
    NotificationRuleUpdate,
    rule_out,
)
from ferrous.api.services import ApiServices
from ferrous.application.commands import (
    CreateNotificationRule,
    DeleteNotificationRule,
    SendTestNotification,
    UpdateNotificationRule,
)
from ferrous.application.notifications import NotificationReads
from ferrous.domain.errors import StorageError


def build_router(services: ApiServices) -> APIRouter:
    router = APIRouter(prefix="/projects/{project}/notifications", tags=["notifications"])
    bus, queries = services.bus, services.queries

    def reads() -> NotificationReads:
        if services.notifications is None:
            raise StorageError("notification rules are not available on this server")
        return services.notifications

    async def project_id(project: str) -> str:
        return (await queries.get_project(project)).id

    @router.get("", dependencies=[require("projects:read")], responses=problems(404))
    async def list_rules(project: str) -> NotificationRuleList:
        """Oldest first."""
        rules = await reads().rules(await project_id(project))
        return NotificationRuleList(items=[rule_out(rule) for rule in rules])

    @router.post(
        "",
        status_code=201,
        dependencies=[require("projects:write")],
        responses=problems(404, 422),
    )
    async def create_rule(
        project: str, body: NotificationRuleCreate, response: Response
    ) -> NotificationRuleOut:
        """Add a rule: a channel, a target, the outcomes and refs it hears of."""
        pid = await project_id(project)
        rule = await bus.handle(
            CreateNotificationRule(
                project_id=pid,
                name=body.name,
                channel=body.channel,
                target=body.target,
                on=frozenset(body.on),
                branches=tuple(body.branches),
                enabled=body.enabled,
                secret=body.secret,
            )
        )
        response.headers["Location"] = f"/api/v1/projects/{pid}/notifications/{rule.id}"
        return rule_out(rule)

    @router.get("/{rule_id}", dependencies=[require("projects:read")], responses=problems(404))
    async def get_rule(project: str, rule_id: str) -> NotificationRuleOut:
        return rule_out(await reads().rule(await project_id(project), rule_id))

    @router.patch(
        "/{rule_id}", dependencies=[require("projects:write")], responses=problems(404, 422)
    )
    async def update_rule(
        project: str, rule_id: str, body: NotificationRuleUpdate
    ) -> NotificationRuleOut:
        rule = await bus.handle(
            UpdateNotificationRule(
                project_id=await project_id(project),
                rule_id=rule_id,
                name=body.name,
                target=body.target,
                on=frozenset(body.on) if body.on is not None else None,
                branches=tuple(body.branches) if body.branches is not None else None,
                enabled=body.enabled,
                secret=body.secret,
            )
        )
        return rule_out(rule)

    @router.delete(
        "/{rule_id}",
        status_code=204,
        dependencies=[require("projects:write")],
        responses=problems(404),
    )
    async def delete_rule(project: str, rule_id: str) -> Response:
        """Its queued deliveries and its log go with it."""
        await bus.handle(
            DeleteNotificationRule(project_id=await project_id(project), rule_id=rule_id)
        )
        return Response(status_code=204)

    @router.get(
        "/{rule_id}/deliveries",
        dependencies=[require("projects:read")],
        responses=problems(404, 422),
    )
    async def list_deliveries(
        project: str,
        rule_id: str,
        limit: int = Query(default=50, ge=1, le=200),
        before: str | None = Query(default=None, description="A delivery id: older ones."),
    ) -> NotificationDeliveryList:
        """The delivery log, newest first: status, attempts, the receiver's last answer."""
        found = await reads().deliveries(await project_id(project), rule_id, limit, before)
        return NotificationDeliveryList(
            items=[NotificationDeliveryOut.model_validate(d) for d in found]
        )

    @router.post(
        "/{rule_id}/test",
        status_code=202,
        dependencies=[require("projects:write")],
        responses=problems(404),
    )
    async def test_rule(project: str, rule_id: str) -> NotificationDeliveryOut:
        """Queue a `ping` delivery of a made-up failed build; watch the delivery log."""
        delivery = await bus.handle(
            SendTestNotification(project_id=await project_id(project), rule_id=rule_id)
        )
        return NotificationDeliveryOut.model_validate(delivery)

    return router
