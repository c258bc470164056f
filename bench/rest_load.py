"""HTTP GET load for bench/dispatch.py: ``wrk`` when installed, else a cheap asyncio client.

The load generator shares the machine with the server, so it must cost little: ``wrk`` is C;
the fallback speaks HTTP/1.1 keep-alive over raw asyncio streams and parses only the status
line and ``Content-Length`` (the server answers every request with one).
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

# wrk's own percentiles, in microseconds, printed by its `done` hook.
WRK_REPORT = """
done = function(summary, latency, requests)
  io.write(string.format("BENCH %d %d %d %d %d %d %d\\n",
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max,
    summary.requests, summary.duration,
    summary.errors.status + summary.errors.connect + summary.errors.read
      + summary.errors.write + summary.errors.timeout))
end
"""


def wrk_load(
    url: str,
    connections: int,
    seconds: float,
    scratch: Path,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    script = scratch / "report.lua"
    script.write_text(WRK_REPORT)
    argv = ["wrk", "-t2", f"-c{connections}", f"-d{max(1, round(seconds))}s", "-s", str(script)]
    for name, value in (headers or {}).items():
        argv += ["-H", f"{name}: {value}"]
    out = subprocess.run([*argv, url], capture_output=True, text=True, check=True).stdout
    line = next(line for line in out.splitlines() if line.startswith("BENCH "))
    p50, p95, p99, top, requests, duration, errors = (int(x) for x in line.split()[1:])
    return {
        "loadgen": "wrk",
        "connections": connections,
        "requests": requests,
        "errors": errors,
        "req_per_s": round(requests / (duration / 1e6), 1),
        "p50_ms": round(p50 / 1000, 1),
        "p95_ms": round(p95 / 1000, 1),
        "p99_ms": round(p99 / 1000, 1),
        "max_ms": round(top / 1000, 1),
    }


async def python_load(
    url: str, connections: int, seconds: float, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    lines = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
    request = f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\n{lines}\r\n".encode()
    latencies: list[float] = []
    errors = 0
    started = time.perf_counter()
    deadline = started + seconds

    async def connection() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        try:
            while time.perf_counter() < deadline:
                sent = time.perf_counter()
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                await reader.readexactly(length)
                latencies.append(time.perf_counter() - sent)
                if head[9:12] != b"200":
                    errors += 1
        finally:
            writer.close()

    await asyncio.gather(*(connection() for _ in range(connections)))
    elapsed = time.perf_counter() - started
    ms = sorted(x * 1000 for x in latencies)

    def at(q: float) -> float:
        return round(ms[min(len(ms) - 1, round(q * (len(ms) - 1)))], 1)

    return {
        "loadgen": "python-asyncio",
        "connections": connections,
        "requests": len(ms),
        "errors": errors,
        "req_per_s": round(len(ms) / elapsed, 1),
        "p50_ms": at(0.5),
        "p95_ms": at(0.95),
        "p99_ms": at(0.99),
        "max_ms": round(ms[-1], 1),
    }
