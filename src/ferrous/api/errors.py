"""The one mapping from the error tree to HTTP, answered as problem+json (RFC 9457).

Everything below the API raises ``ferrous.domain.errors``; the few errors only the HTTP edge
can have (no credentials, a byte range past the end) are defined here as subclasses of the
same tree, so there is one table and one response shape for every failure.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any, ClassVar

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import iter_route_contexts
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Match

from ferrous.application.webhooks import WebhookPayloadInvalid, WebhookSignatureInvalid
from ferrous.domain.errors import (
    ChecksumMismatch,
    ConfigInvalid,
    Conflict,
    CorruptArchive,
    CorruptObject,
    FerrousError,
    InvalidCredentials,
    InvalidValue,
    NotFound,
    PermissionDenied,
    RateLimited,
    RepositoryUnavailable,
    StorageError,
    TooLarge,
    UnsafeArchive,
)

log = structlog.get_logger(__name__)

PROBLEM_JSON = "application/problem+json"
TYPE_PREFIX = "urn:ferrous:problem:"


class Unauthenticated(InvalidCredentials):
    """A valid token is needed (Authorization: Bearer <token>)."""

    headers: ClassVar[dict[str, str]] = {"WWW-Authenticate": "Bearer"}


class RangeNotSatisfiable(FerrousError):
    """The requested byte range is outside the log."""

    def __init__(self, size: int, message: str | None = None) -> None:
        super().__init__(message)
        self.headers = {"Content-Range": f"bytes */{size}"}
        self.extensions = {"size": size}


class PayloadTooLarge(FerrousError):
    """The request body is too large."""


class ServerStopping(FerrousError):
    """This server is stopping: ask again (another server, or this one once restarted)."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or "this server is stopping: claim again in a moment")
        self.headers = {"Retry-After": "1"}


class LogConflict(Conflict):
    """The log chunk was refused; resend from the stored log's size."""

    def __init__(self, size: int, message: str | None = None) -> None:
        super().__init__(message)
        self.extensions = {"size": size}


#: Most specific first is not needed: an error's class hierarchy is walked (MRO) and the
#: first class found here wins, so ``InvalidTransition`` answers as ``Conflict``.
STATUS: dict[type[FerrousError], tuple[int, str]] = {
    InvalidCredentials: (401, "unauthenticated"),
    NotFound: (404, "not-found"),
    Conflict: (409, "conflict"),
    PermissionDenied: (403, "permission-denied"),
    ConfigInvalid: (422, "config-invalid"),
    InvalidValue: (422, "invalid-value"),
    RangeNotSatisfiable: (416, "range-not-satisfiable"),
    PayloadTooLarge: (413, "payload-too-large"),
    RateLimited: (429, "rate-limited"),
    ServerStopping: (503, "server-stopping"),
    WebhookSignatureInvalid: (401, "webhook-unauthenticated"),
    WebhookPayloadInvalid: (400, "webhook-payload-invalid"),
    # a project's repository that cannot be read (unknown host, refused credentials) is
    # the project's to fix, not a fault of this server
    RepositoryUnavailable: (422, "repository-unavailable"),
    # stored bytes that no longer match their checksum: nothing to retry, someone must look
    CorruptObject: (500, "corrupt-object"),
    ChecksumMismatch: (422, "checksum-mismatch"),
    UnsafeArchive: (422, "unsafe-archive"),
    CorruptArchive: (422, "corrupt-archive"),
    TooLarge: (413, "payload-too-large"),
    StorageError: (503, "storage-unavailable"),
    FerrousError: (500, "internal-error"),
}


def status_of(exc: FerrousError) -> tuple[int, str]:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return STATUS[FerrousError]


def retry_after_seconds(wait: float) -> int:
    """A Retry-After value: whole seconds, rounded up, at least 1."""
    return max(1, math.ceil(wait))


def request_id_of(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


def problem(
    request: Request,
    status: int,
    slug: str,
    title: str,
    detail: str | None = None,
    *,
    extensions: dict[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    body: dict[str, Any] = {
        "type": TYPE_PREFIX + slug,
        "title": title,
        "status": status,
        "detail": detail if detail is not None else title,
        "instance": request.url.path,
        "request_id": request_id_of(request),
    }
    if extensions:
        body.update(extensions)
    return Response(
        json.dumps(body).encode(), status_code=status, headers=headers, media_type=PROBLEM_JSON
    )


async def ferrous_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, FerrousError)
    status, slug = status_of(exc)
    if status >= 500:
        log.error("request_failed", error=type(exc).__name__, detail=exc.message)
    title = (type(exc).__doc__ or "").strip().splitlines()[0] if type(exc).__doc__ else slug
    extensions = getattr(exc, "extensions", None)
    headers = getattr(exc, "headers", None)
    if isinstance(exc, RateLimited):
        seconds = retry_after_seconds(exc.retry_after)
        extensions, headers = {"retry_after": seconds}, {"Retry-After": str(seconds)}
    return problem(
        request, status, slug, title, exc.message, extensions=extensions, headers=headers
    )


def field_name(loc: tuple[Any, ...] | list[Any], error_type: str) -> str:
    """``("body", "labels", 0)`` -> ``body.labels[0]``; a broken JSON body is ``body``."""
    if error_type == "json_invalid":
        return str(loc[0]) if loc else "body"
    name = ""
    for part in loc:
        if isinstance(part, int):
            name += f"[{part}]"
        elif part == "[key]":  # a dict key failed, not its value
            name += part
        else:
            name += f".{part}" if name else str(part)
    return name


async def validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"field": field_name(err.get("loc", ()), err.get("type", "")), "message": err["msg"]}
        for err in exc.errors()
    ]
    fields = ", ".join(dict.fromkeys(e["field"] for e in errors))
    return problem(
        request,
        422,
        "validation-error",
        "The request is invalid.",
        f"invalid: {fields}",
        extensions={"errors": errors},
    )


async def http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own errors: no route (404), wrong method (405), ..."""
    assert isinstance(exc, StarletteHTTPException)
    try:
        phrase = HTTPStatus(exc.status_code).phrase
    except ValueError:
        phrase = "Error"
    slug = phrase.lower().replace(" ", "-")
    detail = exc.detail if isinstance(exc.detail, str) and exc.detail != phrase else None
    if exc.status_code == 404 and detail is None:
        detail = f"no route {request.method} {request.url.path}"
    headers = exc.headers
    if exc.status_code == 405:
        headers = {**(headers or {}), "Allow": allowed_methods(request)}
    return problem(request, exc.status_code, slug, phrase, detail, headers=headers)


def allowed_methods(request: Request) -> str:
    """Every method of the request's path, for a 405's ``Allow`` (RFC 9110 §15.5.6).

    Starlette names only those of the first route of the path, while each method of a path
    is its own route here (``GET /projects`` and ``POST /projects``)."""
    methods: set[str] = set()
    for route in iter_route_contexts(request.app.routes):
        if route.matches(request.scope)[0] is not Match.NONE:
            methods |= route.methods or set()
    return ", ".join(sorted(methods))


async def unexpected_error(request: Request, exc: Exception) -> Response:
    """Anything else is a bug: log it with the request id, answer 500 without internals."""
    request_id = request_id_of(request)  # bound explicitly: this runs outside the middleware
    log.error("request_crashed", exc_info=exc, path=request.url.path, request_id=request_id)
    response = problem(request, 500, "internal-error", "Something went wrong in Ferrous CI.")
    if request_id:
        response.headers["X-Request-ID"] = request_id
    return response


def install(app: FastAPI) -> None:
    app.add_exception_handler(FerrousError, ferrous_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, unexpected_error)
