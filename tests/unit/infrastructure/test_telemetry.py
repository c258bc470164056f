"""Tracing from the ``OTEL_*`` variables: off without an endpoint; with one, spans reach a
real OTLP/HTTP receiver (a local HTTP server decoding the protobuf) with the resource's
``service.name`` and ``service.instance.id``, and a build's trace id derived from its id."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from uuid import UUID

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from ferrous.application.tracing import NoBuildTracer, TraceSpan
from ferrous.infrastructure.telemetry import build_trace_id, telemetry_from_environment
from ferrous.infrastructure.telemetry.provider import traces_endpoint

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
BUILD_ID = "0195a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"


class Receiver(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[tuple[str, str, bytes]] = []  # (path, content type, body)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.server.requests.append((self.path, self.headers.get("Content-Type", ""), body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_without_an_endpoint_tracing_is_off() -> None:
    telemetry = telemetry_from_environment({})
    assert not telemetry.enabled
    assert telemetry.http_tracer() is None
    assert isinstance(telemetry.build_tracer, NoBuildTracer)
    assert not telemetry.build_tracer.enabled
    telemetry.shutdown()  # nothing to do


@pytest.mark.parametrize(
    ("environ", "endpoint"),
    [
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, "http://c:4318/v1/traces"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318/"}, "http://c:4318/v1/traces"),
        (
            {
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://t/x",
                "OTEL_EXPORTER_OTLP_ENDPOINT": "a",
            },
            "http://t/x",
        ),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c", "OTEL_SDK_DISABLED": "true"}, None),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c", "OTEL_TRACES_EXPORTER": "none"}, None),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "  "}, None),
    ],
)
def test_the_endpoint_comes_from_the_standard_variables(
    environ: dict[str, str], endpoint: str | None
) -> None:
    assert traces_endpoint(environ) == endpoint


def test_a_build_id_is_its_trace_id() -> None:
    assert build_trace_id(BUILD_ID) == UUID(BUILD_ID).int
    assert build_trace_id("not-a-uuid") == build_trace_id("not-a-uuid") != 0


def test_spans_reach_an_otlp_receiver(receiver: Receiver) -> None:
    telemetry = telemetry_from_environment(
        {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url}, instance_id="server-1"
    )
    assert telemetry.enabled
    http = telemetry.http_tracer()
    assert http is not None
    http.start_span("GET /api/v1/projects").end()
    job = TraceSpan(
        name="compile",
        started_at=T0 + timedelta(seconds=1),
        finished_at=T0 + timedelta(seconds=9),
        attributes={"cicd.pipeline.task.name": "compile"},
    )
    root = TraceSpan(
        name="RUN default",
        kind="server",
        started_at=T0,
        finished_at=T0 + timedelta(seconds=10),
        attributes={"cicd.pipeline.run.id": BUILD_ID},
        error="script_failure",
        children=(job,),
    )
    telemetry.build_tracer.export(BUILD_ID, root)
    telemetry.shutdown()  # flushes the batch

    assert receiver.requests, "nothing exported"
    spans = {}
    for path, content_type, body in receiver.requests:
        assert path == "/v1/traces"
        assert content_type == "application/x-protobuf"
        request = ExportTraceServiceRequest.FromString(body)
        for resource_spans in request.resource_spans:
            resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            assert resource["service.name"] == "ferrous"
            assert resource["service.instance.id"] == "server-1"
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    spans[span.name] = span
    assert sorted(spans) == ["GET /api/v1/projects", "RUN default", "compile"]
    build, compile_span = spans["RUN default"], spans["compile"]
    assert build.trace_id == UUID(BUILD_ID).bytes
    assert build.parent_span_id == b""
    assert compile_span.parent_span_id == build.span_id
    assert build.start_time_unix_nano == int(T0.timestamp()) * 10**9
    assert build.status.code == build.status.STATUS_CODE_ERROR
    assert spans["GET /api/v1/projects"].trace_id != build.trace_id
