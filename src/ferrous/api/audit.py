"""The audit middleware: one entry per state-changing request, once its status is known.

Every POST, PUT, PATCH and DELETE that reached a route is recorded (logins too, with 200,
401 or 429), except the agent protocol's own traffic under ``/api/v1/agent/`` (claims,
heartbeats, log chunks, results: thousands per build, and each is the agent's, not a
person's, doing); an agent's registration is recorded. A request that matched no route
changed nothing and is not recorded, so a scan of made-up paths cannot fill the log.

The entry is written when the answer's first message passes, before the caller sees the
status: whoever sees a success can find it in the log. It goes through the ``AuditLog``
port in its own transaction (the route's unit of work has finished by then); if that write
fails, the answer still goes out (the change is made already) and ``audit_write_failed``
is logged with what the entry held.

The actor: ``request.state.principal`` when the authentication layer set one; else
``request.state.audit_actor`` (the login route's attempted username: failed logins are
attributed); else a forge for webhook deliveries; else anonymous.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import structlog
from fastapi.routing import iter_route_contexts
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ferrous.api.client_ip import client_ip
from ferrous.application.guard_ports import AuditLog
from ferrous.domain.audit import AuditEntry

log = structlog.get_logger(__name__)

STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
AGENT_PROTOCOL = "/api/v1/agent/"
AGENT_REGISTRATION = "/api/v1/agent/register"
WEBHOOKS = "/api/v1/hooks/"


def _now() -> datetime:
    return datetime.now(UTC)


def _storable(value: object) -> str:
    """The text as PostgreSQL can keep it: a NUL (from a made-up path or login name) would
    make the whole entry fail to store."""
    return str(value).replace("\x00", "\ufffd")


def _actor(state: dict[str, Any], template: str, target: dict[str, str]) -> dict[str, Any]:
    principal = state.get("principal")
    if principal is not None:
        return {
            "actor_kind": str(principal.kind),
            "actor_id": str(principal.id),
            "actor_name": _storable(principal.name),
            "role": str(principal.role),
        }
    attempted = state.get("audit_actor")
    if attempted is not None:
        return {"actor_kind": "user", "actor_name": _storable(attempted)}
    if template.startswith(WEBHOOKS):
        return {"actor_kind": "webhook", "actor_name": target.get("forge")}
    return {}


class AuditMiddleware:
    def __init__(
        self, app: ASGIApp, audit_log: AuditLog | None, clock: Callable[[], datetime] = _now
    ) -> None:
        self.app = app
        self.audit_log = audit_log
        self.clock = clock
        self._templates: dict[int, str] = {}  # id(route) -> its full template

    def _template(self, scope: Scope) -> str | None:
        """The matched route's full template (``/api/v1/builds/{build_id}``); None when no
        route matched. A route included with a prefix knows only its own part, so the full
        one comes from the app's route table, as ``route_permissions`` reads it."""
        route = scope.get("route")
        if route is None:
            return None
        if id(route) not in self._templates:
            self._templates = {
                id(context.original_route): context.path
                for context in iter_route_contexts(scope["app"].routes)
                if context.path is not None
            }
        template = self._templates.get(id(route), getattr(route, "path", None))
        return template if isinstance(template, str) else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if (
            self.audit_log is None
            or scope["type"] != "http"
            or scope["method"] not in STATE_CHANGING
            or (path.startswith(AGENT_PROTOCOL) and path != AGENT_REGISTRATION)
        ):
            await self.app(scope, receive, send)
            return
        recorded = False

        async def send_recorded(message: Message) -> None:
            nonlocal recorded
            if message["type"] == "http.response.start" and not recorded:
                recorded = True
                await self._record(scope, message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_recorded)
        except Exception:
            if not recorded:  # answered 500 by the outermost error handler
                recorded = True
                await self._record(scope, 500)
            raise

    async def _record(self, scope: Scope, status: int) -> None:
        assert self.audit_log is not None
        template = self._template(scope)
        if template is None:
            return  # no route matched: nothing was changed
        state: dict[str, Any] = scope.get("state") or {}
        target = {str(k): _storable(v) for k, v in (scope.get("path_params") or {}).items()}
        entry = AuditEntry.create(
            at=self.clock(),
            action=f"{scope['method']} {template}",
            result=status,
            target=target,
            source_ip=client_ip(scope),
            request_id=state.get("request_id"),
            **_actor(state, template, target),
        )
        try:
            await self.audit_log.record(entry)
        except Exception:
            log.exception(
                "audit_write_failed",
                action=entry.action,
                target=dict(entry.target),
                result=entry.result,
                actor=entry.actor_name,
                source_ip=entry.source_ip,
            )
