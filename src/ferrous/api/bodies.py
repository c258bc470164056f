"""Request bodies read with a size limit, so a huge upload is refused before it is held."""

from __future__ import annotations

from fastapi import Request

from ferrous.api.errors import PayloadTooLarge


async def read_body(request: Request, limit: int, what: str) -> bytes:
    """The body, or ``PayloadTooLarge`` (413) as soon as it exceeds ``limit`` bytes: the
    declared length is checked first, and the stream is counted in case it lied."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"{what} may have at most {limit} bytes")
    body = bytearray()
    async for part in request.stream():
        body += part
        if len(body) > limit:
            raise PayloadTooLarge(f"{what} may have at most {limit} bytes")
    return bytes(body)
