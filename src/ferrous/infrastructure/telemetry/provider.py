"""Tracing set up from the standard ``OTEL_*`` variables, or not at all.

Traces are on only when an OTLP endpoint is configured (``OTEL_EXPORTER_OTLP_ENDPOINT`` or
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``; ``OTEL_SDK_DISABLED=true`` or
``OTEL_TRACES_EXPORTER=none`` turn them off). Then spans go through a ``BatchSpanProcessor``
(its queue and delays from ``OTEL_BSP_*``) to the OTLP/HTTP exporter (headers, timeout,
compression from ``OTEL_EXPORTER_OTLP_*``), sampled by ``OTEL_TRACES_SAMPLER``; the resource
says ``service.name=ferrous`` (``OTEL_SERVICE_NAME`` wins) and this process's
``service.instance.id``. Off, there is no provider, no exporter thread, and the build tracer
reads nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.trace import Tracer

from ferrous import __version__
from ferrous.application.tracing import BuildTracer, NoBuildTracer
from ferrous.infrastructure.telemetry.build_tracer import OtelBuildTracer
from ferrous.infrastructure.telemetry.ids import BuildTraceIds

SERVICE_NAME = "ferrous"


def tracer_provider(
    processor: SpanProcessor, *, instance_id: str, service_name: str | None = SERVICE_NAME
) -> TracerProvider:
    """A provider whose spans go to ``processor`` (tests pass a ``SimpleSpanProcessor`` of an
    ``InMemorySpanExporter``). ``Resource.create`` adds ``OTEL_RESOURCE_ATTRIBUTES`` and,
    when ``service_name`` is None, ``OTEL_SERVICE_NAME``."""
    attributes = {"service.instance.id": instance_id, "service.version": __version__}
    if service_name is not None:
        attributes["service.name"] = service_name
    provider = TracerProvider(
        resource=Resource.create(attributes),
        id_generator=BuildTraceIds(),
        shutdown_on_exit=False,  # ``Telemetry.shutdown`` flushes, from the server's stop
    )
    provider.add_span_processor(processor)
    return provider


@dataclass(slots=True)
class Telemetry:
    """What the server traces with: ``provider`` None means tracing is off."""

    provider: TracerProvider | None = None
    build_tracer: BuildTracer = field(default_factory=NoBuildTracer)

    @classmethod
    def on(cls, provider: TracerProvider) -> Telemetry:
        return cls(provider=provider, build_tracer=OtelBuildTracer(provider))

    @property
    def enabled(self) -> bool:
        return self.provider is not None

    def http_tracer(self) -> Tracer | None:
        """The tracer of the API's request spans; None: requests are not traced."""
        if self.provider is None:
            return None
        return self.provider.get_tracer("ferrous.http", __version__)

    def shutdown(self) -> None:
        """Export what is queued and stop the exporter (blocks up to its timeout)."""
        if self.provider is not None:
            self.provider.shutdown()


def traces_endpoint(environ: Mapping[str, str]) -> str | None:
    """Where spans go (the OTLP/HTTP traces URL), or None: tracing is off."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    if environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() == "none":
        return None
    endpoint = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
    if endpoint:
        return endpoint
    base = environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
    if base:
        return f"{base.rstrip('/')}/v1/traces"
    return None


def telemetry_from_environment(
    environ: Mapping[str, str], *, instance_id: str | None = None
) -> Telemetry:
    """Tracing as the ``OTEL_*`` variables say (read here, at the server's start)."""
    endpoint = traces_endpoint(environ)
    if endpoint is None:
        return Telemetry()
    # imported only when used: the exporter brings protobuf and requests along
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
        OTLPSpanExporter,
    )
    from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: PLC0415

    processor = BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint))
    service_name = None if environ.get("OTEL_SERVICE_NAME") else SERVICE_NAME
    provider = tracer_provider(
        processor, instance_id=instance_id or str(uuid.uuid4()), service_name=service_name
    )
    return Telemetry.on(provider)
