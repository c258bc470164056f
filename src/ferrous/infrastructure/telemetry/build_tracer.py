"""The build tracer on OpenTelemetry: replays a finished build's spans with their own times.

Each ``TraceSpan`` becomes an SDK span started and ended at its stored times, its parent
given explicitly: the build's span is a root even though it is exported while the agent's
``complete`` request (itself traced) is being served.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind, Status, StatusCode

from ferrous import __version__
from ferrous.application.tracing import TraceSpan
from ferrous.infrastructure.telemetry.ids import build_trace_id, next_ids, span_id_for

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_KINDS = {"server": SpanKind.SERVER, "internal": SpanKind.INTERNAL}


def nanoseconds(at: datetime) -> int:
    """Nanoseconds since the epoch, exactly (a float timestamp loses the microseconds)."""
    return (at - _EPOCH) // timedelta(microseconds=1) * 1000


class OtelBuildTracer:
    """``BuildTracer`` on a provider made by ``telemetry.tracer_provider`` (whose id
    generator gives the build's spans their derived ids)."""

    def __init__(self, provider: TracerProvider) -> None:
        self._tracer = provider.get_tracer("ferrous.builds", __version__)

    @property
    def enabled(self) -> bool:
        return True

    def export(self, build_id: str, root: TraceSpan) -> None:
        trace_id = build_trace_id(build_id)
        self._emit(root, Context(), trace_id, root.name)

    def _emit(self, span: TraceSpan, parent: Context, trace_id: int, path: str) -> None:
        with next_ids(trace_id, span_id_for(trace_id, path)):
            started = self._tracer.start_span(
                span.name,
                context=parent,
                kind=_KINDS.get(span.kind, SpanKind.INTERNAL),
                attributes=dict(span.attributes),
                start_time=nanoseconds(span.started_at),
            )
        if span.error is not None:
            started.set_status(Status(StatusCode.ERROR, span.error))
        inner = trace.set_span_in_context(started, Context())
        seen: dict[str, int] = {}
        for child in span.children:
            # a retried job's attempts share a name: number the repeats
            seen[child.name] = seen.get(child.name, 0) + 1
            self._emit(child, inner, trace_id, f"{path}/{child.name}#{seen[child.name]}")
        started.end(end_time=nanoseconds(span.finished_at))
