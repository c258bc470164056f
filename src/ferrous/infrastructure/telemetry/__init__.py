"""OpenTelemetry: the tracer provider from ``OTEL_*`` settings and the build tracer."""

from __future__ import annotations

from ferrous.infrastructure.telemetry.build_tracer import OtelBuildTracer
from ferrous.infrastructure.telemetry.ids import build_trace_id
from ferrous.infrastructure.telemetry.provider import (
    Telemetry,
    telemetry_from_environment,
    tracer_provider,
)

__all__ = [
    "OtelBuildTracer",
    "Telemetry",
    "build_trace_id",
    "telemetry_from_environment",
    "tracer_provider",
]
