"""A server span per HTTP request (OpenTelemetry's HTTP conventions), when tracing is on.

A plain ASGI middleware, outermost, so the span covers every other middleware. Its name is
``METHOD /route/{template}`` once routing has found the route (just ``METHOD`` when none
matched: a path would make names without end). A caller's W3C ``traceparent`` makes the span
its child; the span is current while the request runs, so what the request does (and logs)
belongs to it. Only added when a tracer is configured: off, requests pay nothing.
"""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ferrous.api.metrics import UNMATCHED, route_template

#: the methods the conventions know; any other is reported as ``_OTHER``
METHODS = frozenset(
    {"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE"}
)
_PROPAGATOR = TraceContextTextMapPropagator()


class TracingMiddleware:
    def __init__(self, app: ASGIApp, tracer: Tracer) -> None:
        self.app = app
        self._tracer = tracer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        carrier = {
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in scope["headers"]
            if name in (b"traceparent", b"tracestate")
        }
        method = str(scope["method"]).upper()
        known = method if method in METHODS else "_OTHER"
        attributes: dict[str, str] = {
            "http.request.method": known,
            "url.path": str(scope["path"]),
            "url.scheme": str(scope.get("scheme", "http")),
        }
        if known != method:
            attributes["http.request.method_original"] = method
        span = self._tracer.start_span(
            known,
            context=_PROPAGATOR.extract(carrier),
            kind=SpanKind.SERVER,
            attributes=attributes,
        )
        status: list[int] = []

        async def send_traced(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(int(message["status"]))
            await send(message)

        try:
            with trace.use_span(span, end_on_exit=False, record_exception=False):
                await self.app(scope, receive, send_traced)
        except Exception as exc:
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            span.set_attribute("error.type", type(exc).__qualname__)
            raise
        finally:
            self._finish(span, scope, known, status)

    @staticmethod
    def _finish(span: trace.Span, scope: Scope, method: str, status: list[int]) -> None:
        route = route_template(scope)
        if route != UNMATCHED:
            span.update_name(f"{method} {route}")
            span.set_attribute("http.route", route)
        if status:
            code = status[0]
            span.set_attribute("http.response.status_code", code)
            if code >= 500:
                span.set_status(Status(StatusCode.ERROR))
                span.set_attribute("error.type", str(code))
        span.end()
