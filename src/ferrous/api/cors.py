"""CORS: which browser origins may call the API (``FERROUS_CORS_ORIGINS``).

Nothing configured, no CORS headers at all: browsers then allow only pages of the server's
own origin. Configured origins get credentials allowed (cookies, ``Authorization``), so a
wildcard is refused: it would let every site act with a signed-in user's rights.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from ferrous.domain.errors import ConfigInvalid

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
HEADERS = ["Authorization", "Content-Type", "X-Request-ID", "Last-Event-ID"]
EXPOSED = ["X-Request-ID", "Retry-After", "Location", "Content-Range"]
MAX_AGE = 600  # seconds a browser may keep a preflight's answer


def checked_origins(origins: Sequence[str]) -> list[str]:
    """``scheme://host[:port]`` each, without a path; raises ConfigInvalid otherwise."""
    checked = []
    for origin in origins:
        parts = urlsplit(origin)
        if origin == "*" or "*" in origin:
            raise ConfigInvalid("FERROUS_CORS_ORIGINS: list the origins, a wildcard is refused")
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/"):
            raise ConfigInvalid(
                f"FERROUS_CORS_ORIGINS: {origin!r} is not an origin (https://ci.example.com)"
            )
        checked.append(f"{parts.scheme}://{parts.netloc.lower()}")
    return checked


def add_cors(app: FastAPI, origins: Sequence[str]) -> None:
    if not origins:
        return
    app.add_middleware(
        CORSMiddleware,
        allow_origins=checked_origins(origins),
        allow_credentials=True,
        allow_methods=METHODS,
        allow_headers=HEADERS,
        expose_headers=EXPOSED,
        max_age=MAX_AGE,
    )
