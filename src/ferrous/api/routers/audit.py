"""The audit log: who changed what, newest first (admins: ``audit:read``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from ferrous.api.permissions import require
from ferrous.api.schemas.audit import AuditEntryOut, AuditPage
from ferrous.api.schemas.common import as_utc, problems
from ferrous.api.services import ApiServices
from ferrous.domain.audit import AuditFilter
from ferrous.domain.errors import NotFound


def build_router(services: ApiServices) -> APIRouter:
    router = APIRouter(tags=["audit"])

    @router.get(
        "/audit",
        dependencies=[require("audit:read")],
        response_model=AuditPage,
        responses=problems(404, 422),
    )
    async def list_audit(
        actor: Annotated[
            str | None, Query(max_length=255, description="An actor's id or name.")
        ] = None,
        action: Annotated[
            str | None,
            Query(
                max_length=300,
                description="A prefix of the action: `POST /api/v1/auth/login`, `DELETE `.",
            ),
        ] = None,
        since: Annotated[datetime | None, Query(description="From this moment on.")] = None,
        until: Annotated[datetime | None, Query(description="Before this moment.")] = None,
        result: Annotated[
            int | None, Query(ge=100, le=599, description="The HTTP status answered.")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        cursor: Annotated[str | None, Query(max_length=500)] = None,
    ) -> AuditPage:
        """State-changing requests and login attempts, newest first; follow `next_cursor`
        for older ones. A naive `since`/`until` is taken as UTC."""
        if services.audit_log is None:
            raise NotFound("this server keeps no audit log")
        filters = AuditFilter(
            actor=actor,
            action_prefix=action,
            since=as_utc(since) if since else None,
            until=as_utc(until) if until else None,
            result=result,
        )
        page = await services.audit_log.query(filters, cursor=cursor, limit=limit)
        return AuditPage(
            items=[AuditEntryOut.model_validate(entry) for entry in page.items],
            next_cursor=page.next_cursor,
        )

    return router
