"""Job logs over HTTP: whole, byte ranges, offsets, and the live Server-Sent Events stream."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from ferrous.api.log_stream import complete_utf8
from ferrous.api.services import LogSignal
from tests.unit.api.conftest import assert_problem, create_project, trigger
from tests.unit.api.fakes import FakeWorld

LOG = b"line 1\nline 2\r\nprogress 50%\rprogress 100%\n"


@pytest.fixture
async def job_id(client: httpx.AsyncClient, world: FakeWorld) -> str:
    await create_project(client)
    job_id: str = (await trigger(client))["jobs"][0]["id"]
    world.queries.set_job(job_id, status="running", agent_id="agent-1")
    world.logs.data[job_id] = bytearray(LOG)
    return job_id


async def test_the_whole_log(client: httpx.AsyncClient, job_id: str) -> None:
    response = await client.get(f"/api/v1/jobs/{job_id}/log")

    assert response.status_code == 200
    assert response.content == LOG
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.headers["x-log-size"] == str(len(LOG))
    assert response.headers["x-job-status"] == "running"
    assert response.headers["accept-ranges"] == "bytes"


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [("bytes=5-10", 5, 11), ("bytes=7-", 7, len(LOG)), ("bytes=-6", len(LOG) - 6, len(LOG))],
)
async def test_a_byte_range_is_206(
    client: httpx.AsyncClient, job_id: str, header: str, start: int, end: int
) -> None:
    response = await client.get(f"/api/v1/jobs/{job_id}/log", headers={"Range": header})

    assert response.status_code == 206
    assert response.content == LOG[start:end]
    assert response.headers["content-range"] == f"bytes {start}-{end - 1}/{len(LOG)}"
    assert response.headers["x-log-size"] == str(len(LOG))


async def test_a_range_past_the_end_is_416(client: httpx.AsyncClient, job_id: str) -> None:
    response = await client.get(f"/api/v1/jobs/{job_id}/log", headers={"Range": "bytes=999-"})

    body = assert_problem(response, 416)
    assert body["size"] == len(LOG)
    assert response.headers["content-range"] == f"bytes */{len(LOG)}"


@pytest.mark.parametrize("header", ["bytes=0-1,4-5", "lines=1-2", "bytes=x-", "bytes=9-3"])
async def test_a_range_it_cannot_use_sends_everything(
    client: httpx.AsyncClient, job_id: str, header: str
) -> None:
    response = await client.get(f"/api/v1/jobs/{job_id}/log", headers={"Range": header})

    assert (response.status_code, response.content) == (200, LOG)


async def test_an_offset_sends_the_rest(client: httpx.AsyncClient, job_id: str) -> None:
    rest = await client.get(f"/api/v1/jobs/{job_id}/log", params={"offset": 7})
    nothing_new = await client.get(f"/api/v1/jobs/{job_id}/log", params={"offset": len(LOG)})
    past = await client.get(f"/api/v1/jobs/{job_id}/log", params={"offset": len(LOG) + 1})

    assert (rest.status_code, rest.content) == (200, LOG[7:])
    assert (nothing_new.status_code, nothing_new.content) == (200, b"")
    assert assert_problem(past, 416)["size"] == len(LOG)
    negative = await client.get(f"/api/v1/jobs/{job_id}/log", params={"offset": -1})
    assert [e["field"] for e in assert_problem(negative, 422)["errors"]] == ["query.offset"]


async def test_a_large_log_is_streamed_in_parts(
    client: httpx.AsyncClient, world: FakeWorld, job_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("ferrous.api.log_ranges.PART", 8)

    response = await client.get(f"/api/v1/jobs/{job_id}/log", headers={"Range": "bytes=3-"})

    assert response.status_code == 206
    assert response.content == LOG[3:]
    assert response.headers["content-length"] == str(len(LOG) - 3)


async def test_the_log_of_an_unknown_job_is_404(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/api/v1/jobs/nope/log"), 404)
    assert_problem(await client.get("/api/v1/jobs/nope/log/stream"), 404)


# --- Server-Sent Events ---------------------------------------------------------------------


def parse_sse(text: str) -> list[dict[str, Any]]:
    events = []
    for block in text.split("\n\n"):
        event: dict[str, Any] = {}
        for line in block.splitlines():
            if line.startswith(":"):
                continue
            name, _, value = line.partition(": ")
            event[name] = value
        if event:
            if "data" in event:
                event["data"] = json.loads(event["data"])
            events.append(event)
    return events


async def test_stream_sends_stored_then_live_bytes_then_end(
    client: httpx.AsyncClient, world: FakeWorld, job_id: str
) -> None:
    request = asyncio.create_task(client.get(f"/api/v1/jobs/{job_id}/log/stream"))
    await world.feed.waiting(job_id)
    world.logs.data[job_id] += b"live \xe2\x9c\x93\n"
    world.feed.signal(job_id)
    await world.feed.waiting(job_id, times=2)
    world.logs.data[job_id] += b"done\n"
    world.queries.set_job(job_id, status="success")
    world.feed.signal(job_id, LogSignal(finished=True))
    response = await request

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    size = len(LOG) + len("live ✓\n".encode()) + len(b"done\n")
    assert parse_sse(response.text) == [
        {"data": LOG.decode(), "id": str(len(LOG))},
        {"data": "live ✓\n", "id": str(size - 5)},
        {"data": "done\n", "id": str(size)},
        {"event": "end", "data": {"status": "success", "size": size}, "id": str(size)},
    ]
    assert world.feed.subscriptions == []  # closed


async def test_stream_of_a_finished_job_ends_at_once(
    client: httpx.AsyncClient, world: FakeWorld, job_id: str
) -> None:
    world.queries.set_job(job_id, status="failed")

    response = await client.get(
        f"/api/v1/jobs/{job_id}/log/stream", params={"offset": 100}, headers={"Last-Event-ID": "7"}
    )

    assert parse_sse(response.text) == [
        {"data": LOG[7:].decode(), "id": str(len(LOG))},
        {"event": "end", "data": {"status": "failed", "size": len(LOG)}, "id": str(len(LOG))},
    ]


async def test_stream_resumes_from_an_offset(
    client: httpx.AsyncClient, world: FakeWorld, job_id: str
) -> None:
    world.queries.set_job(job_id, status="success")

    response = await client.get(f"/api/v1/jobs/{job_id}/log/stream", params={"offset": len(LOG)})

    assert [e.get("event") for e in parse_sse(response.text)] == ["end"]


async def test_stream_never_splits_a_character(
    client: httpx.AsyncClient, world: FakeWorld, job_id: str
) -> None:
    world.logs.data[job_id] = bytearray(b"caf\xc3")
    request = asyncio.create_task(client.get(f"/api/v1/jobs/{job_id}/log/stream"))
    await world.feed.waiting(job_id)
    world.logs.data[job_id] += b"\xa9!"
    world.queries.set_job(job_id, status="success")
    world.feed.signal(job_id, LogSignal(finished=True))

    events = parse_sse((await request).text)

    assert events[:2] == [{"data": "caf", "id": "3"}, {"data": "é!", "id": "6"}]


async def test_a_quiet_signal_rechecks_the_status(
    client: httpx.AsyncClient, world: FakeWorld, job_id: str
) -> None:
    request = asyncio.create_task(client.get(f"/api/v1/jobs/{job_id}/log/stream"))
    await world.feed.waiting(job_id)
    world.queries.set_job(job_id, status="canceled")
    world.feed.signal(job_id)  # no new bytes, no "finished": the stream looks at the job

    events = parse_sse((await request).text)

    assert events[-1] == {
        "event": "end",
        "data": {"status": "canceled", "size": len(LOG)},
        "id": str(len(LOG)),
    }


async def test_stream_stops_without_end_when_the_feed_stops(
    client: httpx.AsyncClient, world: FakeWorld, job_id: str
) -> None:
    request = asyncio.create_task(client.get(f"/api/v1/jobs/{job_id}/log/stream"))
    await world.feed.waiting(job_id)
    world.feed.signal(job_id, None)  # the server shuts down

    events = parse_sse((await request).text)

    assert events == [{"data": LOG.decode(), "id": str(len(LOG))}]


@pytest.mark.parametrize(
    ("data", "cut"),
    [
        (b"", 0),
        (b"abc", 3),
        (b"caf\xc3", 3),
        (b"caf\xc3\xa9", 5),
        (b"\xe2\x9c", 0),
        (b"x\xe2\x9c\x93", 4),
        (b"\xf0\x9f\x98", 0),
        (b"\xf0\x9f\x98\x80", 4),
        (b"\x80\x80\x80\x80", 4),
    ],
)
def test_complete_utf8(data: bytes, cut: int) -> None:
    assert complete_utf8(data) == cut
