"""The error mapping (problem+json), request ids, health and the API's own docs."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import structlog
import structlog.testing
from fastapi import FastAPI

from ferrous.api import errors
from ferrous.api.app import create_app
from ferrous.application.queries import ProjectView
from ferrous.domain.errors import (
    ConfigInvalid,
    Conflict,
    ExecutionError,
    FerrousError,
    InvalidTransition,
    NotFound,
    PermissionDenied,
    RepositoryUnavailable,
    StorageError,
)
from tests.unit.api.conftest import assert_problem
from tests.unit.api.fakes import FakeWorld


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (NotFound(), 404),
        (Conflict(), 409),
        (InvalidTransition(), 409),
        (PermissionDenied(), 403),
        (errors.Unauthenticated(), 401),
        (ConfigInvalid(), 422),
        (StorageError(), 503),
        (RepositoryUnavailable(), 422),
        (ExecutionError(), 500),
        (FerrousError(), 500),
        (errors.RangeNotSatisfiable(10), 416),
        (errors.PayloadTooLarge(), 413),
        (errors.LogConflict(3), 409),
    ],
)
def test_each_error_has_one_status(error: FerrousError, status: int) -> None:
    assert errors.status_of(error)[0] == status


@pytest.mark.parametrize(
    ("loc", "kind", "field"),
    [
        (("body", "ref"), "string_too_short", "body.ref"),
        (("body", "labels", 0), "string_type", "body.labels[0]"),
        (("query", "limit"), "less_than_equal", "query.limit"),
        (("body", 12), "json_invalid", "body"),
        (
            ("body", "variables", "A-B", "[key]"),
            "string_pattern_mismatch",
            "body.variables.A-B[key]",
        ),
    ],
)
def test_field_names(loc: tuple[Any, ...], kind: str, field: str) -> None:
    assert errors.field_name(loc, kind) == field


class FailingQueries:
    """Raises what it is given; records the log context it was called in."""

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.context: dict[str, Any] = {}

    async def list_projects(self) -> list[ProjectView]:
        self.context = structlog.contextvars.get_contextvars()
        raise self.error


def app_failing_with(world: FakeWorld, error: Exception) -> tuple[FastAPI, FailingQueries]:
    queries = FailingQueries(error)
    app = create_app(world.services(queries=queries))
    app.state.test_headers = world.people.headers()
    return app, queries


async def get(app: FastAPI, path: str, **kwargs: Any) -> httpx.Response:
    """``path`` as the admin of the app's world."""
    transport = httpx.ASGITransport(app, raise_app_exceptions=False)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://test", headers=app.state.test_headers
    ) as client:
        return await client.get(path, **kwargs)


@pytest.mark.parametrize(
    ("error", "status", "slug"),
    [
        (StorageError("the database is away"), 503, "storage-unavailable"),
        (ConfigInvalid("bad"), 422, "config-invalid"),
        (PermissionDenied(), 403, "permission-denied"),
    ],
)
async def test_errors_below_answer_problem_json(
    world: FakeWorld, error: FerrousError, status: int, slug: str
) -> None:
    app, _ = app_failing_with(world, error)

    body = assert_problem(await get(app, "/api/v1/projects"), status)

    assert body["type"] == f"urn:ferrous:problem:{slug}"
    assert body["title"] == (type(error).__doc__ or "").strip()
    assert body["detail"] == error.message


async def test_a_crash_is_500_without_internals(world: FakeWorld) -> None:
    app, _ = app_failing_with(world, RuntimeError("secret internals"))

    with structlog.testing.capture_logs() as logs:
        response = await get(app, "/api/v1/projects", headers={"X-Request-ID": "crash-1"})

    body = assert_problem(response, 500)
    assert "secret" not in response.text
    assert body["request_id"] == "crash-1"
    assert [(e["event"], e["request_id"]) for e in logs] == [("request_crashed", "crash-1")]


async def test_the_request_id_is_echoed_and_bound_to_logs(world: FakeWorld) -> None:
    app, queries = app_failing_with(world, NotFound())

    response = await get(app, "/api/v1/projects", headers={"X-Request-ID": "req-42"})

    assert response.headers["x-request-id"] == "req-42"
    assert response.json()["request_id"] == "req-42"
    assert queries.context == {"request_id": "req-42"}
    assert structlog.contextvars.get_contextvars() == {}


async def test_a_request_id_is_made_when_missing_or_unusable(client: httpx.AsyncClient) -> None:
    made = await client.get("/healthz")
    replaced = await client.get("/healthz", headers={"X-Request-ID": "x" * 200})
    other = await client.get("/healthz")

    for response in (made, replaced):
        assert len(response.headers["x-request-id"]) == 32
    assert made.headers["x-request-id"] != other.headers["x-request-id"]


async def test_unknown_routes_and_methods_are_problems(client: httpx.AsyncClient) -> None:
    missing = assert_problem(await client.get("/api/v1/nothing-here"), 404)
    wrong_method = await client.delete("/api/v1/projects")

    assert missing["detail"] == "no route GET /api/v1/nothing-here"
    assert assert_problem(wrong_method, 405)["title"] == "Method Not Allowed"
    assert wrong_method.headers["allow"] == "GET, POST"  # both routes of the path


async def test_healthz_and_docs(client: httpx.AsyncClient) -> None:
    health = await client.get("/healthz")
    docs = await client.get("/api/docs")
    spec = (await client.get("/api/openapi.json")).json()

    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()
    assert "/api/openapi.json" in docs.text
    assert spec["info"]["title"] == "Ferrous CI"
    builds = spec["paths"]["/api/v1/builds"]["get"]
    assert builds["x-permission"] == "builds:read"
    assert "application/problem+json" in builds["responses"]["422"]["content"]
    claim = spec["paths"]["/api/v1/agent/claim"]["post"]
    assert claim["x-permission"] == "agent:protocol"
    assert claim["security"] == [{"AgentToken": []}]
    assert "/healthz" not in spec["paths"]
    for path in spec["paths"].values():  # errors are documented as they are sent
        for operation in path.values():
            for status, response in operation["responses"].items():
                if status >= "400":
                    assert list(response["content"]) == ["application/problem+json"]
    assert "HTTPValidationError" not in spec["components"]["schemas"]
