"""The app factory: the REST API under ``/api/v1``, its docs, and ``/healthz``."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from ferrous import __version__
from ferrous.api import errors
from ferrous.api.agent_auth import AgentAuthenticator
from ferrous.api.audit import AuditMiddleware
from ferrous.api.client_ip import ClientIpMiddleware, TrustedProxies
from ferrous.api.cors import add_cors
from ferrous.api.metrics import HttpMetricsMiddleware
from ferrous.api.metrics import build_router as metrics_router
from ferrous.api.middleware import RequestIdMiddleware
from ferrous.api.openapi import finish_openapi
from ferrous.api.rate_limits import LoginThrottle, RateLimitMiddleware
from ferrous.api.routers import (
    agent_files,
    agent_protocol,
    agent_registration_tokens,
    agents,
    api_tokens,
    artifacts,
    audit,
    auth,
    builds,
    hooks,
    jobs,
    meta,
    notifications,
    pipelines,
    projects,
    schedules,
    secrets,
    test_reports,
    trigger_tokens,
    users,
)
from ferrous.api.services import ApiServices
from ferrous.api.tracing import TracingMiddleware

API_PREFIX = "/api/v1"
DESCRIPTION = """\
The REST API of Ferrous CI. Errors are `application/problem+json` (RFC 9457) with a
`request_id`; send `X-Request-ID` to choose it. Timestamps are ISO 8601 in UTC. Lists answer
`{"items": [...]}`; build listings page with `next_cursor`. Each operation's `x-permission`
names the permission it needs.
"""


class FerrousApi(FastAPI):
    def openapi(self) -> dict[str, Any]:
        if self.openapi_schema is None:
            finish_openapi(self, super().openapi())
        return super().openapi()  # cached now


def create_app(services: ApiServices) -> FastAPI:
    """The ASGI app; all state it needs comes in ``services`` (see ``api.services``)."""
    app = FerrousApi(
        title="Ferrous CI",
        version=__version__,
        description=DESCRIPTION,
        docs_url=None,  # served by the meta router, which declares their permission
        redoc_url=None,
        openapi_url=None,
    )
    app.state.services = services
    app.state.agent_authenticator = AgentAuthenticator(
        services.agent_by_token_hash, services.agent_token_cache_seconds
    )
    app.state.login_throttle = LoginThrottle(services.rate_limiter, services.login_limits)
    errors.install(app)
    # Added innermost first: a request passes the request id, the client's address, CORS,
    # the rate limits, then the audit log on its way to the routes. (Authentication that
    # runs as a middleware goes right before the rate limits: they read its principal.)
    app.add_middleware(AuditMiddleware, audit_log=services.audit_log)
    app.add_middleware(
        RateLimitMiddleware, limiter=services.rate_limiter, limits=services.request_limits
    )
    add_cors(app, services.cors_origins)
    app.add_middleware(ClientIpMiddleware, trusted_proxies=TrustedProxies(services.trusted_proxies))
    app.add_middleware(RequestIdMiddleware)
    app.add_middleware(HttpMetricsMiddleware, metrics=services.metrics)  # times all of it
    if services.tracer is not None:  # outermost: its span holds all the rest
        app.add_middleware(TracingMiddleware, tracer=services.tracer)

    routers = (
        builds,
        jobs,
        agent_protocol,
        agent_files,
        artifacts,
        projects,
        pipelines,
        agents,
        agent_registration_tokens,
        schedules,
        hooks,
        trigger_tokens,
        auth,
        users,
        api_tokens,
        secrets,
        audit,
        test_reports,
        notifications,
    )
    for module in routers:  # hot first
        app.include_router(module.build_router(services), prefix=API_PREFIX)
    app.include_router(meta.build_router(app))
    app.include_router(metrics_router(services.metrics, services.metrics_token))
    return app
