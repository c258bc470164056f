"""Log shipping: in order, in bounded chunks, retried at the same offset, resynced, stopped."""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import threading
import time
from pathlib import Path

import pytest
import structlog
from structlog.testing import capture_logs

from ferrous.agent.remote.client import AgentClient, LeaseLost, RetryPolicy
from ferrous.agent.remote.log_shipper import LogShipper
from ferrous.domain.errors import Conflict
from ferrous.infrastructure.memory.store import append_bytes
from tests.unit.agent.remote.conftest import REGISTRATION_TOKEN, Server, make_repo


class MemoryLog:
    """A server's log store, with the API's answers: 409 and the stored size on a conflict."""

    def __init__(self) -> None:
        self.log = b""
        self.calls: list[tuple[int, int]] = []
        self.lose_tail_at: dict[int, int] = {}  # call number -> bytes the store forgets
        self.lease_lost_at: int | None = None  # call number
        self.gate: asyncio.Event | None = None

    async def append_log(self, job_id: str, offset: int, data: bytes) -> int:
        number = len(self.calls)
        self.calls.append((offset, len(data)))
        if self.gate is not None:
            await self.gate.wait()
        if number in self.lose_tail_at:
            self.log = self.log[: len(self.log) - self.lose_tail_at[number]]
        if self.lease_lost_at is not None and number >= self.lease_lost_at:
            raise LeaseLost("this agent does not hold the job's lease", size=len(self.log))
        try:
            self.log = append_bytes(self.log, job_id, offset, data)
        except Conflict as exc:
            raise LeaseLost(exc.message, size=len(self.log)) from exc
        return len(self.log)


def payload(size: int, seed: int = 1) -> bytes:
    rng = random.Random(seed)
    lines = []
    total = 0
    n = 0
    while total < size:
        line = f"{n:08d} {'x' * rng.randrange(0, 120)}\n".encode()
        lines.append(line)
        total += len(line)
        n += 1
    return b"".join(lines)[: size - 1] + b"\n"  # close() would end an unfinished line


def write_in_pieces(shipper: LogShipper, data: bytes, seed: int = 2) -> None:
    rng = random.Random(seed)
    at = 0
    while at < len(data):
        step = rng.randrange(1, 200_000)
        shipper.write(data[at : at + step])
        at += step


async def ship(shipper: LogShipper, data: bytes) -> None:
    shipper.start()
    await asyncio.to_thread(write_in_pieces, shipper, data)
    shipper.close()
    await asyncio.wait_for(shipper.finish(), 30)


async def test_megabytes_arrive_in_order_and_a_retried_chunk_counts_once(
    server: Server, tmp_path: Path
) -> None:
    build = await server.trigger(make_repo(tmp_path / "repo", "job:\n  script: ['true']\n"))
    client = AgentClient(server.url, retry=RetryPolicy(initial=0.01, max_delay=0.05))
    await client.register(REGISTRATION_TOKEN, name="a1")
    claimed = await client.claim()
    assert claimed is not None
    job_id = claimed["job_id"]
    server.recorder.fail_log = {3}  # stored, but the answer is lost: sent again
    data = payload(3_000_000)
    shipper = LogShipper(client, job_id, max_chunk=256 * 1024)
    await ship(shipper, data)
    await client.aclose()

    assert server.log(job_id) == data
    assert build.id == claimed["build_id"]
    chunks = server.recorder.log_chunks
    assert chunks[3] == chunks[4]  # the same chunk, at the same offset
    sent = chunks[:4] + chunks[5:]
    assert [offset for offset, _ in sent] == [
        sum(length for _, length in sent[:i]) for i in range(len(sent))
    ]
    assert sum(length for _, length in sent) == len(data)
    assert len(sent) >= len(data) // (256 * 1024)
    assert all(0 < length <= 256 * 1024 for _, length in sent)
    assert (shipper.offset, shipper.chunks, shipper.stopped_reason) == (len(data), len(sent), None)


async def test_a_log_the_server_lost_the_tail_of_is_sent_again() -> None:
    store = MemoryLog()
    store.lose_tail_at = {5: 100_000, 9: 70_000}
    data = payload(2_000_000)
    shipper = LogShipper(store, "job", max_chunk=64 * 1024)
    await ship(shipper, data)
    assert store.log == data
    assert shipper.stopped_reason is None
    offsets = [offset for offset, _ in store.calls]
    rewinds = [(a, b) for a, b in itertools.pairwise(offsets) if b < a]
    assert len(rewinds) == 2  # sent again from the server's size, twice


async def test_a_gap_it_cannot_fill_stops_shipping_but_not_the_job() -> None:
    store = MemoryLog()
    store.lose_tail_at = {20: 1_000_000}  # more than the shipper keeps
    lost: list[int] = []
    shipper = LogShipper(
        store, "job", max_chunk=64 * 1024, history=128 * 1024, on_lease_lost=lambda: lost.append(1)
    )
    await ship(shipper, payload(3_000_000))
    assert shipper.stopped_reason == "log_gap"
    assert lost == []
    assert len(store.log) < 3_000_000


async def test_a_lost_lease_stops_shipping_and_says_so() -> None:
    store = MemoryLog()
    store.lease_lost_at = 3
    lost: list[int] = []
    shipper = LogShipper(store, "job", max_chunk=64 * 1024, on_lease_lost=lambda: lost.append(1))
    data = payload(1_000_000)
    await ship(shipper, data)
    assert shipper.lease_lost
    assert lost == [1]
    assert len(store.calls) == 4  # no chunk after the refusal
    assert store.log == data[: 3 * 64 * 1024]
    assert shipper.written >= len(data)
    assert shipper.dropped == shipper.written - len(store.log)


async def test_output_is_shipped_after_the_interval_or_at_the_size_threshold() -> None:
    store = MemoryLog()
    shipper = LogShipper(store, "job", flush_interval=0.1, flush_bytes=1000)
    shipper.start()
    shipper.write(b"a little\n")
    async with asyncio.timeout(2):
        while store.log != b"a little\n":
            await asyncio.sleep(0.01)
    slow = LogShipper(MemoryLog(), "job", flush_interval=60, flush_bytes=1000)
    slow.start()
    slow.write(b"x" * 999)
    await asyncio.sleep(0.2)
    assert slow._client.log == b""  # type: ignore[attr-defined]  # below the threshold
    slow.write(b"y")
    async with asyncio.timeout(2):
        while slow._client.log != b"x" * 999 + b"y":  # type: ignore[attr-defined]
            await asyncio.sleep(0.01)
    for s in (shipper, slow):
        s.close()
        await s.finish()


async def test_notes_start_on_their_own_line() -> None:
    store = MemoryLog()
    shipper = LogShipper(store, "job")
    shipper.start()
    shipper.write(b"no newline")
    shipper.note("Job succeeded")
    shipper.end_line()
    shipper.write(b"partial")
    shipper.close()
    await shipper.finish()
    assert store.log == b"no newline\nJob succeeded\npartial\n"


async def test_a_job_that_outruns_the_server_waits_for_it() -> None:
    store = MemoryLog()
    store.gate = asyncio.Event()
    shipper = LogShipper(store, "job", max_buffer=1_000_000, max_chunk=256 * 1024)
    shipper.start()
    data = payload(3_000_000)
    writer = threading.Thread(target=write_in_pieces, args=(shipper, data))
    writer.start()
    await asyncio.sleep(0.3)
    assert writer.is_alive()  # blocked: the buffer is full and nothing is shipped
    # What the shipper took before it got stuck, plus a full buffer, plus the last piece:
    assert shipper.written < 2 * 1_000_000 + 200_000
    store.gate.set()
    await asyncio.to_thread(writer.join, 10)
    shipper.close()
    await shipper.finish()
    assert store.log == data


@pytest.mark.parametrize("size", [50_000_000])
async def test_writing_is_not_slowed_by_shipping(size: int) -> None:
    """50 MB through the shipper into a fast store: the writer barely notices."""
    store = MemoryLog()
    shipper = LogShipper(store, "job")
    shipper.start()
    block = payload(1 << 20)
    blocks = size // len(block)

    def produce() -> float:
        started = time.perf_counter()
        for _ in range(blocks):
            shipper.write(block)
        return time.perf_counter() - started

    took = await asyncio.to_thread(produce)
    shipper.close()
    await shipper.finish()
    assert len(store.log) == blocks * len(block)
    assert took < 2.0


@pytest.mark.parametrize("level", [logging.DEBUG, logging.INFO, None])
async def test_lines_reach_the_agent_log_only_at_debug_level(level: int | None) -> None:
    if level is not None:
        structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(level))
    try:
        with capture_logs() as logs:
            shipper = LogShipper(MemoryLog(), "job-1")
            shipper.start()
            shipper.write(b"first\nsec")
            shipper.write(b"ond\nthird")
            shipper.close()
            await shipper.finish()
    finally:
        structlog.reset_defaults()
    lines = [(e["job_id"], e["line"]) for e in logs if e["event"] == "job_output"]
    if level == logging.DEBUG:
        assert lines == [("job-1", "first"), ("job-1", "second"), ("job-1", "third")]
    else:  # at info, or not configured at all (structlog would print everything)
        assert lines == []
