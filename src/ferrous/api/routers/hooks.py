"""Forge webhooks: ``POST /api/v1/hooks/{forge}/{project}`` and the delivery log.

The hook route needs no token of ours: its permission is ``public`` and the delivery's
signature (or GitLab's token), checked against the project's webhook secret, is the check.
Bad or missing signatures answer 401, unreadable deliveries 400, bodies over the limit 413,
and every answer to an authentic delivery is 200, also for events that build nothing:
forges count anything else as a failed delivery.
"""

from __future__ import annotations

import dataclasses

from fastapi import APIRouter, Path, Query, Request

from ferrous.api.bodies import read_body
from ferrous.api.permissions import require
from ferrous.api.schemas.common import problems
from ferrous.api.schemas.webhooks import DeliveryList, DeliveryOut, WebhookAnswer
from ferrous.api.services import ApiServices
from ferrous.application.commands import ReceiveWebhook

FORGE = Path(pattern=r"^[a-z][a-z-]{1,29}$", description="github, gitlab, gitea, forgejo, ...")


def build_router(services: ApiServices) -> APIRouter:
    router = APIRouter(tags=["webhooks"])
    bus, queries = services.bus, services.queries

    @router.post(
        "/hooks/{forge}/{project}",
        dependencies=[require("public")],
        responses=problems(400, 401, 404, 413, 503),
    )
    async def receive_webhook(request: Request, project: str, forge: str = FORGE) -> WebhookAnswer:
        """A forge's delivery (`github`, `gitlab`, `gitea`, `forgejo`, `gogs`, `bitbucket`)
        for the project (id or name). Pushes, tag pushes and opened, reopened or updated
        merge requests build each enabled pipeline; a redelivery builds nothing again."""
        body = await read_body(request, services.webhook_max_bytes, "a webhook delivery")
        receipt = await bus.handle(
            ReceiveWebhook(project=project, forge=forge, headers=request.headers, body=body)
        )
        record = dataclasses.asdict(receipt.record)
        return WebhookAnswer.model_validate({**record, "redelivery": receipt.redelivery})

    @router.get(
        "/projects/{project}/webhook-deliveries",
        dependencies=[require("projects:read")],
        responses=problems(404),
    )
    async def list_deliveries(project: str, limit: int = Query(50, ge=1, le=500)) -> DeliveryList:
        """The project's last deliveries, newest first (only those whose signature held)."""
        found = await queries.get_project(project)
        records = await queries.list_webhook_deliveries(found.id, limit)
        return DeliveryList(
            items=[DeliveryOut.model_validate(dataclasses.asdict(r)) for r in records]
        )

    return router
