"""A job's log over plain HTTP: the whole log, a byte range (206), or from an offset."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from starlette.responses import Response, StreamingResponse

from ferrous.api.errors import RangeNotSatisfiable
from ferrous.api.services import LogReader
from ferrous.application.queries import JobView

MEDIA_TYPE = "text/plain; charset=utf-8"
PART = 1024 * 1024  # larger answers are streamed in parts of this size


@dataclass(frozen=True, slots=True)
class ByteRange:
    start: int
    end: int  # exclusive


def parse_range(header: str, size: int) -> ByteRange | None:
    """The one range of ``Range: bytes=a-b`` (or ``a-``, ``-n``) within a log of ``size``.

    None means "ignore the header and send everything", as RFC 9110 allows for a header
    that is malformed, names another unit or asks for several ranges. A well-formed range
    that starts past the end raises RangeNotSatisfiable (416).
    """
    unit, _, spec = header.partition("=")
    first, dash, last = spec.strip().partition("-")
    if unit.strip().lower() != "bytes" or not dash or "," in spec:
        return None
    if not first:  # the last n bytes
        if not last.isdigit():
            return None
        if int(last) == 0 or size == 0:
            raise RangeNotSatisfiable(size)
        return ByteRange(max(0, size - int(last)), size)
    if not first.isdigit() or (last and not last.isdigit()):
        return None
    start = int(first)
    if last and int(last) < start:
        return None
    if start >= size:
        raise RangeNotSatisfiable(size, f"the log has {size} bytes; the range starts at {start}")
    return ByteRange(start, min(int(last) + 1, size) if last else size)


async def log_response(
    reader: LogReader, job: JobView, range_header: str | None, offset: int | None
) -> Response:
    size = await reader.size(job.id)
    headers = {
        "X-Log-Size": str(size),
        "X-Job-Status": job.status,
        "Accept-Ranges": "bytes",
        "Cache-Control": "no-store",
    }
    status = 200
    wanted = parse_range(range_header, size) if range_header else None
    if wanted is not None:
        status = 206
        headers["Content-Range"] = f"bytes {wanted.start}-{wanted.end - 1}/{size}"
    elif offset is not None:
        if offset > size:
            raise RangeNotSatisfiable(size, f"the log has {size} bytes; offset {offset} is past it")
        wanted = ByteRange(offset, size)
    else:
        wanted = ByteRange(0, size)
    length = wanted.end - wanted.start
    if length <= PART:
        data = await reader.read(job.id, wanted.start, wanted.end) if length else b""
        return Response(data, status_code=status, headers=headers, media_type=MEDIA_TYPE)
    headers["Content-Length"] = str(length)
    return StreamingResponse(
        _parts(reader, job.id, wanted), status_code=status, headers=headers, media_type=MEDIA_TYPE
    )


async def _parts(reader: LogReader, job_id: str, wanted: ByteRange) -> AsyncIterator[bytes]:
    for at in range(wanted.start, wanted.end, PART):
        yield await reader.read(job_id, at, min(at + PART, wanted.end))
