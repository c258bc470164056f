"""Every route declares exactly one permission; a new route without one fails here."""

from __future__ import annotations

import pytest
from fastapi import APIRouter, FastAPI

from ferrous.api.permissions import PERMISSIONS, require, route_permissions

EXPECTED = {
    "POST /api/v1/projects": "projects:write",
    "GET /api/v1/projects": "projects:read",
    "GET /api/v1/projects/{project}": "projects:read",
    "PATCH /api/v1/projects/{project}": "projects:write",
    "GET /api/v1/projects/{project}/pipelines": "pipelines:read",
    "POST /api/v1/projects/{project}/pipelines": "pipelines:write",
    "GET /api/v1/pipelines/{pipeline_id}": "pipelines:read",
    "POST /api/v1/pipelines/{pipeline_id}/enable": "pipelines:write",
    "POST /api/v1/pipelines/{pipeline_id}/disable": "pipelines:write",
    "POST /api/v1/pipelines/{pipeline_id}/builds": "builds:trigger",
    "POST /api/v1/projects/{project}/builds": "builds:trigger",
    "GET /api/v1/builds": "builds:read",
    "GET /api/v1/builds/{build_id}": "builds:read",
    "POST /api/v1/builds/{build_id}/cancel": "builds:cancel",
    "POST /api/v1/builds/{build_id}/retry": "builds:retry",
    "GET /api/v1/jobs/{job_id}": "jobs:read",
    "POST /api/v1/jobs/{job_id}/retry": "jobs:retry",
    "POST /api/v1/jobs/{job_id}/play": "jobs:play",
    "GET /api/v1/jobs/{job_id}/log": "logs:read",
    "GET /api/v1/jobs/{job_id}/log/stream": "logs:read",
    "GET /api/v1/jobs/{job_id}/artifacts": "jobs:read",
    "GET /api/v1/jobs/{job_id}/artifacts/files": "jobs:read",
    "GET /api/v1/jobs/{job_id}/artifacts/download": "jobs:read",
    "GET /api/v1/jobs/{job_id}/artifacts/files/{path}": "jobs:read",
    "GET /api/v1/agents": "agents:read",
    "POST /api/v1/agent-registration-tokens": "agents:admin",
    "GET /api/v1/agent-registration-tokens": "agents:admin",
    "DELETE /api/v1/agent-registration-tokens/{token_id}": "agents:admin",
    "GET /api/v1/projects/{project}/schedules": "schedules:read",
    "POST /api/v1/hooks/{forge}/{project}": "public",
    "GET /api/v1/projects/{project}/webhook-deliveries": "projects:read",
    "POST /api/v1/projects/{project}/schedules": "schedules:write",
    "GET /api/v1/schedules/{schedule_id}": "schedules:read",
    "PATCH /api/v1/schedules/{schedule_id}": "schedules:write",
    "DELETE /api/v1/schedules/{schedule_id}": "schedules:write",
    "POST /api/v1/schedules/{schedule_id}/run": "builds:trigger",
    "GET /api/v1/projects/{project}/trigger-tokens": "triggers:read",
    "POST /api/v1/projects/{project}/trigger-tokens": "triggers:write",
    "DELETE /api/v1/projects/{project}/trigger-tokens/{token_id}": "triggers:write",
    "POST /api/v1/projects/{project}/trigger/pipeline": "public",
    "GET /api/v1/projects/{project}/secrets": "secrets:read",
    "PUT /api/v1/projects/{project}/secrets/{name}": "secrets:write",
    "DELETE /api/v1/projects/{project}/secrets/{name}": "secrets:write",
    "GET /api/v1/secrets": "instance_secrets:admin",
    "PUT /api/v1/secrets/{name}": "instance_secrets:admin",
    "DELETE /api/v1/secrets/{name}": "instance_secrets:admin",
    "POST /api/v1/auth/login": "public",
    "POST /api/v1/auth/refresh": "public",
    "POST /api/v1/auth/logout": "account",
    "GET /api/v1/auth/me": "account",
    "GET /api/v1/users": "users:admin",
    "POST /api/v1/users": "users:admin",
    "GET /api/v1/users/{user_id}": "users:admin",
    "PATCH /api/v1/users/{user_id}": "users:admin",
    "GET /api/v1/tokens": "account",
    "POST /api/v1/tokens": "account",
    "DELETE /api/v1/tokens/{token_id}": "account",
    "GET /api/v1/service-tokens": "users:admin",
    "GET /api/v1/audit": "audit:read",
    "GET /api/v1/builds/{build_id}/tests": "builds:read",
    "GET /api/v1/projects/{project}/tests/history": "builds:read",
    "GET /api/v1/projects/{project}/jobs/history": "jobs:read",
    "POST /api/v1/agent/register": "public",
    "POST /api/v1/agent/claim": "agent:protocol",
    "POST /api/v1/agent/heartbeat": "agent:protocol",
    "POST /api/v1/agent/jobs/{job_id}/log": "agent:protocol",
    "POST /api/v1/agent/jobs/{job_id}/complete": "agent:protocol",
    "PUT /api/v1/agent/jobs/{job_id}/artifacts/{kind}": "agent:protocol",
    "GET /api/v1/agent/jobs/{job_id}/dependencies/{source_job_id}/artifacts": "agent:protocol",
    "GET /api/v1/agent/jobs/{job_id}/caches/{key}": "agent:protocol",
    "PUT /api/v1/agent/jobs/{job_id}/caches/{key}": "agent:protocol",
    "GET /api/v1/projects/{project}/notifications": "projects:read",
    "POST /api/v1/projects/{project}/notifications": "projects:write",
    "GET /api/v1/projects/{project}/notifications/{rule_id}": "projects:read",
    "PATCH /api/v1/projects/{project}/notifications/{rule_id}": "projects:write",
    "DELETE /api/v1/projects/{project}/notifications/{rule_id}": "projects:write",
    "GET /api/v1/projects/{project}/notifications/{rule_id}/deliveries": "projects:read",
    "POST /api/v1/projects/{project}/notifications/{rule_id}/test": "projects:write",
    "GET /healthz": "public",
    "GET /readyz": "public",
    "GET /metrics": "public",
    "GET /api/openapi.json": "public",
    "GET /api/docs": "public",
}


def undeclared(app: FastAPI) -> dict[str, list[str]]:
    return {
        route: permissions
        for route, permissions in route_permissions(app).items()
        if len(permissions) != 1 or permissions[0] not in PERMISSIONS
    }


def test_every_route_declares_exactly_one_permission(app: FastAPI) -> None:
    assert undeclared(app) == {}


def test_the_routes_and_their_permissions(app: FastAPI) -> None:
    table = {route: permissions[0] for route, permissions in route_permissions(app).items()}
    assert table == EXPECTED


def test_a_route_without_a_permission_is_caught(app: FastAPI) -> None:
    @app.get("/api/v1/forgotten")
    async def forgotten() -> None: ...

    assert undeclared(app) == {"GET /api/v1/forgotten": []}


def test_a_route_with_two_permissions_is_caught() -> None:
    app = FastAPI(docs_url=None, openapi_url=None, redoc_url=None)
    router = APIRouter(dependencies=[require("builds:read")])

    @router.post("/double", dependencies=[require("builds:cancel")])
    async def double() -> None: ...

    app.include_router(router)

    assert undeclared(app) == {"POST /double": ["builds:read", "builds:cancel"]}


def test_mounted_apps_are_caught() -> None:
    app = FastAPI(docs_url=None, openapi_url=None, redoc_url=None)
    app.mount("/static", FastAPI())

    assert undeclared(app) == {"* /static": []}


def test_an_unknown_permission_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown permission"):
        require("builds:delete")  # type: ignore[arg-type]
