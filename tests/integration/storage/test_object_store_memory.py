"""Objects stream through the stores: a put and a read of 300 MB keep the process's peak
memory growth far below the object's size (one part buffer at a time, not the object)."""

from __future__ import annotations

import os
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.integration.storage.conftest import Backend

pytestmark = pytest.mark.integration

MiB = 1024 * 1024
SIZE = 300 * MiB
LIMIT = 60 * MiB  # peak RSS growth allowed
STATUS = Path("/proc/self/status")


def status_kib(field: str) -> int:
    match = re.search(rf"^{field}:\s+(\d+) kB", STATUS.read_text(), re.MULTILINE)
    assert match, f"no {field} in {STATUS}"
    return int(match.group(1))


def reset_peak() -> int:
    """Start a fresh peak (VmHWM) at the current RSS where the kernel allows it; the baseline
    to measure growth from."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return status_kib("VmHWM") * 1024  # cannot reset: growth above the old peak
    return status_kib("VmRSS") * 1024


async def generated(size: int) -> AsyncIterator[bytes]:
    block = os.urandom(MiB)  # one block, sent again and again: the source holds no more
    for _ in range(size // MiB):
        yield block


@pytest.mark.skipif(not STATUS.exists(), reason="needs /proc/self/status (Linux)")
async def test_a_large_object_streams_in_bounded_memory(backend: Backend) -> None:
    started = time.monotonic()
    await backend.store.put("warm/up", generated(MiB))  # clients and models load once: not
    await backend.store.delete("warm/up")  # what is measured here
    baseline = reset_peak()
    stored = await backend.store.put("big/object", generated(SIZE))
    size = 0
    async for chunk in await backend.store.read("big/object", sha256=stored.sha256):
        size += len(chunk)
    growth = status_kib("VmHWM") * 1024 - baseline
    await backend.store.delete("big/object")  # moto keeps objects in its memory
    assert (stored.size, size) == (SIZE, SIZE)
    assert growth < LIMIT, f"peak RSS grew by {growth / MiB:.0f} MiB moving {SIZE // MiB} MiB"
    assert time.monotonic() - started < 20
