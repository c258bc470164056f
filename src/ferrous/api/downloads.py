"""Binary bodies both ways: streamed archive responses and their OpenAPI descriptions.

A download states its ``Content-Length`` and, for stored archives, the sha256 it must have
(``X-Checksum-Sha256``): the body streams from the object store, so a corrupt object can
only break the stream off at its end, and clients check the header.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import structlog
from fastapi import Request
from fastapi.responses import StreamingResponse

from ferrous.api.errors import PayloadTooLarge
from ferrous.api.services import ApiServices
from ferrous.application.artifacts import Artifacts, Download
from ferrous.application.caches import Caches
from ferrous.archive import MEDIA_TYPE
from ferrous.domain.errors import CorruptObject, StorageError

log = structlog.get_logger(__name__)

CHECKSUM_HEADER = "X-Checksum-Sha256"
BINARY = {"schema": {"type": "string", "format": "binary"}}
DOWNLOAD_HEADERS = {
    CHECKSUM_HEADER: {
        "description": "The sha256 of the body (hex): compare it, the stream cannot fail late.",
        "schema": {"type": "string"},
    },
    "Content-Length": {"schema": {"type": "integer"}},
}


def artifacts_of(services: ApiServices) -> Artifacts:
    if services.artifacts is None:
        raise StorageError("this server keeps no artifacts (no object store)")
    return services.artifacts


def caches_of(services: ApiServices) -> Caches:
    if services.caches is None:
        raise StorageError("this server keeps no caches (no object store)")
    return services.caches


def upload_body(media_type: str = MEDIA_TYPE) -> dict[str, Any]:
    """``openapi_extra`` for a route that reads its body as a stream."""
    # octet-stream too: generic clients (and API fuzzers) know how to send that
    content = {media_type: BINARY, "application/octet-stream": BINARY}
    return {"requestBody": {"required": True, "content": content}}


def download_responses(media_type: str = MEDIA_TYPE) -> dict[int | str, dict[str, Any]]:
    return {200: {"content": {media_type: BINARY}, "headers": DOWNLOAD_HEADERS}}


def refuse_declared_size(request: Request, limit: int, what: str) -> None:
    """413 at once when the declared length is over ``limit`` (the store counts too)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"{what} may have at most {limit} bytes")


def attachment(filename: str) -> str:
    """A ``Content-Disposition`` that survives any name (quotes, slashes, non-ASCII)."""
    safe = "".join(
        c if c.isascii() and c.isprintable() and c not in '"\\/;' else "_" for c in filename
    )
    return f"attachment; filename=\"{safe or 'download'}\"; filename*=UTF-8''{quote(filename)}"


def streamed(
    download: Download, *, media_type: str = MEDIA_TYPE, as_attachment: bool = False
) -> StreamingResponse:
    headers = {"Content-Length": str(download.size), "X-Content-Type-Options": "nosniff"}
    if download.sha256:
        headers[CHECKSUM_HEADER] = download.sha256
    if as_attachment:
        headers["Content-Disposition"] = attachment(download.filename)
    return StreamingResponse(
        _watched(download.chunks, download.filename), media_type=media_type, headers=headers
    )


async def _watched(chunks: AsyncIterator[bytes], filename: str) -> AsyncIterator[bytes]:
    """The chunks; a corrupt object is logged by name before it breaks the stream off (the
    response has started: no problem+json can be sent any more)."""
    try:
        async for chunk in chunks:
            yield chunk
    except CorruptObject as exc:
        log.error("download_corrupt", filename=filename, detail=exc.message)
        raise
