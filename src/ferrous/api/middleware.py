"""Request ids: take the caller's ``X-Request-ID`` (or make one), echo it, bind it to logs.

A plain ASGI middleware (no per-request task or body copy): it only touches the scope and
the response start message.
"""

from __future__ import annotations

import re
import secrets

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ferrous.api.log_context import request_log_context

HEADER = b"x-request-id"
_ACCEPTABLE = re.compile(rb"^[A-Za-z0-9._:@/+=-]{1,128}$")


def new_request_id() -> str:
    return secrets.token_hex(16)


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = None
        for name, value in scope["headers"]:
            if name == HEADER:
                if _ACCEPTABLE.match(value):
                    request_id = value.decode("ascii")
                break
        if request_id is None:
            request_id = new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id
        encoded = request_id.encode("ascii")

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                if not any(name.lower() == HEADER for name, _ in headers):
                    headers.append((HEADER, encoded))
                    message["headers"] = headers
            await send(message)

        with request_log_context(request_id):  # also drops what the request bound later
            await self.app(scope, receive, send_with_id)
