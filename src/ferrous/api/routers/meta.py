"""Liveness, readiness and the API's own documentation (OpenAPI JSON and Swagger UI).

``/healthz`` answers as long as the process does (Kubernetes' liveness probe: restart when
it stops). ``/readyz`` asks the backends (``ApiServices.readiness``): 200 ``{"status":
"ready", "checks": {"database": "ok", ...}}``, or 503 ``{"status": "not-ready", "checks":
{"database": "unreachable: ...", ...}}`` (the readiness probe: send no traffic meanwhile);
also 503, with ``"server": "stopping"``, from the moment the server begins to stop.
Both are public, never rate-limited and never audited.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse

from ferrous.api.permissions import require
from ferrous.application.readiness import OK

OPENAPI_URL = "/api/openapi.json"
DOCS_URL = "/api/docs"


def build_router(app: FastAPI) -> APIRouter:
    router = APIRouter(dependencies=[require("public")], include_in_schema=False)

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz")
    async def readyz() -> JSONResponse:
        services = app.state.services
        probe = services.readiness
        checks = dict((await probe.check()).checks) if probe is not None else {}
        if services.claim_waiter.closing:  # load balancers drain it while it stops
            checks["server"] = "stopping"
        ready = all(state == OK for state in checks.values())
        return JSONResponse(
            {"status": "ready" if ready else "not-ready", "checks": checks},
            status_code=200 if ready else 503,
            headers={"Cache-Control": "no-store"},
        )

    @router.get(OPENAPI_URL)
    async def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    @router.get(DOCS_URL, response_class=HTMLResponse)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=OPENAPI_URL, title=f"{app.title} API")

    return router
