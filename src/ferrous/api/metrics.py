"""``/metrics`` (Prometheus text format) and the middleware that times every request.

Requests are labelled by their route template (``/api/v1/builds/{build_id}``), never by the
raw path: one series per route, whatever ids are asked for. Routing records the route in the
scope on the way in; a request answered before routing (a rate limit's 429) is matched
against the routes here; one that matches none is ``<unmatched>``. A response is timed to its end,
except an event stream (live logs), which is timed to its first byte: it lasts as long as
its viewer watches.

``/metrics`` is public in the permission table and checks its own secret: with
``FERROUS_METRICS_TOKEN`` set it needs ``Authorization: Bearer <that token>`` (401 without).
"""

from __future__ import annotations

import hmac
import time

from fastapi import APIRouter, Request, Response
from fastapi.routing import iter_route_contexts
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ferrous.api.errors import Unauthenticated
from ferrous.api.permissions import require
from ferrous.api.services import MetricsExporter
from ferrous.domain.errors import NotFound

METRICS_PATH = "/metrics"
UNMATCHED = "<unmatched>"
_EVENT_STREAM = b"text/event-stream"


def route_template(scope: Scope) -> str:
    """The template of the route that answered (FastAPI keeps the one of an included
    router, its prefix included, in ``scope["fastapi"]``); before routing, the first route
    that matches (or that would with another method: a 405)."""
    chosen = (scope.get("fastapi") or {}).get("effective_route_context") or scope.get("route")
    if chosen is None:
        app = scope.get("app")
        for candidate in iter_route_contexts(getattr(app, "routes", ())):
            match, _ = candidate.matches(scope)
            if match is Match.FULL:
                chosen = candidate
                break
            if match is Match.PARTIAL and chosen is None:
                chosen = candidate
    path = getattr(chosen, "path_format", None)
    return path if isinstance(path, str) and path else UNMATCHED


class HttpMetricsMiddleware:
    def __init__(self, app: ASGIApp, metrics: MetricsExporter | None) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        metrics = self.metrics
        if metrics is None or scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # an exception before any answer is the server's error
        observed = False

        def observe() -> None:
            nonlocal observed
            observed = True
            elapsed = time.perf_counter() - started
            metrics.http_request(scope["method"], route_template(scope), status, elapsed)

        async def timed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                for name, value in message.get("headers", ()):
                    if name == b"content-type" and value.startswith(_EVENT_STREAM):
                        observe()  # a stream: to its first byte
                        break
            await send(message)

        try:
            await self.app(scope, receive, timed_send)
        finally:
            if not observed:
                observe()


def build_router(exporter: MetricsExporter | None, token: str | None) -> APIRouter:
    router = APIRouter(dependencies=[require("public")], include_in_schema=False)
    expected = token.encode() if token else None

    @router.get(METRICS_PATH)
    async def metrics(request: Request) -> Response:
        if expected is not None:
            scheme, _, given = request.headers.get("authorization", "").partition(" ")
            valid = scheme.lower() == "bearer" and hmac.compare_digest(
                given.strip().encode(), expected
            )
            if not valid:
                raise Unauthenticated("the metrics need Authorization: Bearer <metrics token>")
        if exporter is None:
            raise NotFound("metrics are not collected on this server")
        return Response(await exporter.exposition(), media_type=exporter.content_type)

    return router
