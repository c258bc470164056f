"""HTTP server spans: named by method and route template, with the HTTP conventions'
attributes, a caller's ``traceparent`` honoured, server errors marked; and none at all when
no tracer is configured."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from ferrous.api.app import create_app
from ferrous.api.tracing import TracingMiddleware
from ferrous.infrastructure.telemetry import tracer_provider
from tests.unit.api.conftest import create_project, trigger
from tests.unit.api.fakes import FakeWorld

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> Iterator[TracerProvider]:
    provider = tracer_provider(SimpleSpanProcessor(exporter), instance_id="test")
    yield provider
    provider.shutdown()


@pytest.fixture
async def client(world: FakeWorld, provider: TracerProvider) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(world.services(tracer=provider.get_tracer("test")))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app), base_url="http://test", headers=world.people.headers()
    ) as client:
        yield client


def only(exporter: InMemorySpanExporter) -> ReadableSpan:
    spans = exporter.get_finished_spans()
    assert len(spans) == 1, [s.name for s in spans]
    return spans[0]


async def test_a_request_is_a_server_span_named_by_its_route(
    client: httpx.AsyncClient, exporter: InMemorySpanExporter
) -> None:
    await create_project(client)
    build = await trigger(client)
    exporter.clear()

    answer = await client.get(f"/api/v1/builds/{build['id']}")
    assert answer.status_code == 200
    span = only(exporter)
    assert span.name == "GET /api/v1/builds/{build_id}"
    assert span.kind == SpanKind.SERVER
    assert span.parent is None
    assert dict(span.attributes or {}) == {
        "http.request.method": "GET",
        "http.route": "/api/v1/builds/{build_id}",
        "http.response.status_code": 200,
        "url.path": f"/api/v1/builds/{build['id']}",
        "url.scheme": "http",
    }
    assert span.status.status_code == StatusCode.UNSET


async def test_a_callers_traceparent_makes_the_span_its_child(
    client: httpx.AsyncClient, exporter: InMemorySpanExporter
) -> None:
    answer = await client.get(
        "/api/v1/projects", headers={"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"}
    )
    assert answer.status_code == 200
    span = only(exporter)
    assert span.context is not None
    assert span.parent is not None
    assert span.context.trace_id == int(TRACE_ID, 16)
    assert span.parent.span_id == int(PARENT_ID, 16)
    assert span.parent.is_remote


async def test_a_malformed_traceparent_starts_a_new_trace(
    client: httpx.AsyncClient, exporter: InMemorySpanExporter
) -> None:
    await client.get("/api/v1/projects", headers={"traceparent": "00-nonsense-01"})
    span = only(exporter)
    assert span.parent is None


async def test_an_unrouted_path_is_named_by_its_method_alone(
    client: httpx.AsyncClient, exporter: InMemorySpanExporter
) -> None:
    answer = await client.get("/no/such/place")
    assert answer.status_code == 404
    span = only(exporter)
    assert span.name == "GET"
    assert span.attributes is not None
    assert "http.route" not in span.attributes
    assert span.attributes["http.response.status_code"] == 404
    assert span.status.status_code == StatusCode.UNSET  # a client's error is not the server's


async def test_a_server_error_marks_the_span(
    world: FakeWorld, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    async def app(scope: object, receive: object, send: object) -> None:
        raise RuntimeError("boom")

    traced = TracingMiddleware(app, provider.get_tracer("test"))  # type: ignore[arg-type]
    transport = httpx.ASGITransport(traced, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        answer = await client.post("/anything")
    assert answer.status_code == 500
    span = only(exporter)
    assert span.name == "POST"
    assert span.status.status_code == StatusCode.ERROR
    assert span.attributes is not None
    assert span.attributes["error.type"] == "RuntimeError"
    assert [event.name for event in span.events] == ["exception"]


async def test_the_span_is_current_while_the_request_runs(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    tracer = provider.get_tracer("test")

    async def app(scope: object, receive: object, send: object) -> None:
        with tracer.start_as_current_span("inner"):
            pass
        await send({"type": "http.response.start", "status": 204, "headers": []})  # type: ignore[operator]
        await send({"type": "http.response.body", "body": b""})  # type: ignore[operator]

    traced = TracingMiddleware(app, tracer)  # type: ignore[arg-type]
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(traced), base_url="http://test"
    ) as client:
        await client.delete("/x")
    inner, outer = exporter.get_finished_spans()
    assert inner.parent is not None
    assert outer.context is not None
    assert inner.parent.span_id == outer.context.span_id
    assert outer.attributes is not None
    assert outer.attributes["http.response.status_code"] == 204


async def test_without_a_tracer_there_is_no_middleware(world: FakeWorld) -> None:
    app = create_app(world.services())
    assert not any(m.cls is TracingMiddleware for m in app.user_middleware)
