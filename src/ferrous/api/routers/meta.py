"""Liveness and the API's own documentation (OpenAPI JSON and Swagger UI)."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse

from ferrous.api.permissions import require

OPENAPI_URL = "/api/openapi.json"
DOCS_URL = "/api/docs"


def build_router(app: FastAPI) -> APIRouter:
    router = APIRouter(dependencies=[require("public")], include_in_schema=False)

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get(OPENAPI_URL)
    async def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    @router.get(DOCS_URL, response_class=HTMLResponse)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=OPENAPI_URL, title=f"{app.title} API")

    return router
