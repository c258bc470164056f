"""Secret values never leave the agent in a job's log: masked as they are written.

The shipper masks before it buffers, so no chunk, retried or resynced, and no debug line
holds a secret, even one written in pieces that were shipped apart; a possible beginning
of a secret waits for the next write (or ``close``), never for a timer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from urllib.parse import quote

import pytest
import structlog
from structlog.testing import capture_logs

from ferrous.agent.remote import log_shipper
from ferrous.agent.remote.log_shipper import LogShipper
from tests.unit.agent.remote.test_log_shipper import MemoryLog

SECRET = "dk_live_7f3a9c2e5b1d4f8a0c6e2b9d7f1a3c5e"
FAST = 0.02  # seconds: the flush interval of these shippers


async def until(condition: Callable[[], bool], timeout: float = 2.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.005)


async def test_a_secret_written_whole_in_pieces_and_url_encoded_is_masked() -> None:
    store = MemoryLog()
    shipper = LogShipper(store, "job", flush_interval=FAST, mask=[SECRET, "p@ss word/1"])
    shipper.start()
    shipper.write(f"whole: {SECRET}\n".encode())
    await until(lambda: store.log.endswith(b"\n"))
    shipper.write(f"split: {SECRET[:10]}".encode())
    await asyncio.sleep(10 * FAST)  # shipping goes on meanwhile ...
    assert b"split: " in store.log
    assert SECRET[:10].encode() not in store.log  # ... but not the possible secret's start
    chunks = len(store.calls)
    shipper.write(f"{SECRET[10:]}\n".encode())
    for byte in f"bytes: {SECRET}\n".encode():
        shipper.write(bytes([byte]))
    shipper.write(f"url: https://x:{quote('p@ss word/1', safe='')}@host/\n".encode())
    shipper.close()
    await shipper.finish()

    assert len(store.calls) > chunks  # the pieces were shipped apart
    assert store.log == (
        b"whole: [MASKED]\nsplit: [MASKED]\nbytes: [MASKED]\nurl: https://x:[MASKED]@host/\n"
    )
    assert shipper.written > len(store.log)  # what the job wrote, not what was shipped


async def test_a_held_beginning_that_was_no_secret_is_shipped_at_close() -> None:
    store = MemoryLog()
    shipper = LogShipper(store, "job", flush_interval=FAST, mask=[SECRET])
    shipper.start()
    shipper.write(b"prefix dk_live_")  # might be the secret: held back
    await asyncio.sleep(10 * FAST)
    assert store.log == b"prefix "
    shipper.close()  # ends the line: "dk_live_\n" is no secret
    await shipper.finish()
    assert store.log == b"prefix dk_live_\n"


async def test_the_end_of_a_job_cut_inside_a_secret_masks_what_was_printed() -> None:
    store = MemoryLog()
    shipper = LogShipper(store, "job", flush_interval=FAST, mask=[SECRET, SECRET + "\nline2"])
    shipper.start()
    shipper.write(f"{SECRET}\n".encode())  # a prefix of the multi-line value: held
    shipper.close()
    await shipper.finish()
    assert store.log == b"[MASKED]\n"


async def test_notes_are_masked_too() -> None:
    store = MemoryLog()
    shipper = LogShipper(store, "job", mask=[SECRET])
    shipper.start()
    shipper.note(f"ERROR: git said https://oauth2:{SECRET}@forge/app.git")
    shipper.close()
    await shipper.finish()
    assert store.log == b"ERROR: git said https://oauth2:[MASKED]@forge/app.git\n"


async def test_the_debug_log_gets_the_masked_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    # a fresh logger: the module's may be cached by an earlier ``configure_logging``
    monkeypatch.setattr(log_shipper, "log", structlog.get_logger(log_shipper.__name__))
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG))
    try:
        with capture_logs() as logs:
            shipper = LogShipper(MemoryLog(), "job-1", mask=[SECRET])
            shipper.start()
            shipper.write(f"key {SECRET[:5]}".encode())
            shipper.write(f"{SECRET[5:]} end\nlast {SECRET[:3]}".encode())
            shipper.close()
            await shipper.finish()
    finally:
        structlog.reset_defaults()
    lines = [e["line"] for e in logs if e["event"] == "job_output"]
    assert lines == ["key [MASKED] end", f"last {SECRET[:3]}"]


async def test_without_secrets_nothing_is_held() -> None:
    store = MemoryLog()
    shipper = LogShipper(store, "job", flush_interval=FAST)
    shipper.start()
    shipper.write(b"dk_live_")
    await until(lambda: store.log == b"dk_live_")
    shipper.close()
    await shipper.finish()
