"""A job's log as Server-Sent Events: what is stored from an offset, then live, then ``end``.

Each event's id is the byte offset after its text, so a reconnecting ``EventSource`` resumes
exactly (it sends ``Last-Event-ID``). Log events carry the text as a JSON string (logs have
``\\r`` and blank lines that SSE's ``data:`` lines would lose); a chunk never splits a UTF-8
character. The final ``end`` event carries ``{"status": ..., "size": ...}``.

The stream holds no database connection while it waits: it sleeps on the ``LogFeed`` and
reads the bytes from the ``LogReader`` when woken.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator

from fastapi.sse import ServerSentEvent

from ferrous.api.services import ApiServices
from ferrous.domain.statuses import FINISHED_STATUSES

CHUNK = 64 * 1024
STATUS_RECHECK_SECONDS = 10.0


def complete_utf8(data: bytes) -> int:
    """The length of the longest prefix of ``data`` that does not end inside a character."""
    size = len(data)
    for back in range(1, min(4, size) + 1):
        byte = data[size - back]
        if byte & 0xC0 == 0x80:  # a continuation byte: look further back for the lead
            continue
        needed = 1 if byte < 0xC0 else 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
        return size - back if back < needed else size
    return size  # only continuation bytes: invalid anyway, send them


def log_event(text: str, offset: int) -> ServerSentEvent:
    return ServerSentEvent(raw_data=json.dumps(text), id=str(offset))


def end_event(status: str, offset: int) -> ServerSentEvent:
    data = json.dumps({"status": status, "size": offset})
    return ServerSentEvent(event="end", raw_data=data, id=str(offset))


async def log_events(
    services: ApiServices, job_id: str, offset: int
) -> AsyncIterator[ServerSentEvent]:
    """The events of one viewer. The job's status is read before the log's size, so once
    it is final the size read after it covers every byte; it is re-read when the feed says
    the job finished, when a signal brings no new bytes (the job went quiet), and at least
    every ``STATUS_RECHECK_SECONDS``."""
    reader, queries = services.logs_reader, services.queries
    subscription = await services.log_events.subscribe(job_id)
    try:
        status = (await queries.get_job(job_id)).status
        checked_at = time.monotonic()
        size = await reader.size(job_id)
        while True:
            finished = status in FINISHED_STATUSES
            while offset < size:
                data = await reader.read(job_id, offset, min(offset + CHUNK, size))
                cut = len(data) if finished else complete_utf8(data)
                if cut == 0:
                    break  # the rest of a character is still on its way (or nothing came)
                offset += cut
                yield log_event(data[:cut].decode("utf-8", errors="replace"), offset)
            if finished:
                yield end_event(status, offset)
                return
            signal = await anext(subscription, None)  # None: the feed ended (shutdown)
            before, size = size, await reader.size(job_id)
            if (
                signal is None
                or signal.finished
                or size <= before
                or time.monotonic() - checked_at > STATUS_RECHECK_SECONDS
            ):
                status = (await queries.get_job(job_id)).status
                checked_at = time.monotonic()
                size = await reader.size(job_id)
                if signal is None and status not in FINISHED_STATUSES:
                    return  # the viewer reconnects with Last-Event-ID
    finally:
        await subscription.aclose()
