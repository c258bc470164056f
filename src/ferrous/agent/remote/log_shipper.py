"""A job's log, shipped to the server while it runs: chunks appended at byte offsets.

The job writes from its own thread (``JobLog``: ``write``, ``note``, ``end_line``,
``close``); writing only appends to a buffer under a lock, so a job printing tens of
megabytes is not slowed by the network. A task on the agent's event loop ships the buffer:
when it holds ``flush_bytes`` (256 KiB), or ``flush_interval`` (200 ms) after the last
shipment, or at ``close``, in chunks of at most ``max_chunk`` bytes, one request at a time, in
order.

- A chunk that fails transiently is sent again at the same offset by the client (the server
  accepts a repeated chunk once), so nothing is lost or doubled across a server restart.
- A 409 saying the server's log is *shorter* than our offset (it lost its tail) is resynced:
  the missing bytes are sent again from the server's size, if we still hold them (the last
  ``history`` bytes are kept); if we do not, shipping stops (``log_gap``), the job goes on.
- Any other refusal means the lease is lost (the job was canceled or taken over): shipping
  stops, later output is dropped, and ``on_lease_lost`` runs (the worker cancels the job).
- The buffer is bounded (``max_buffer``): a job that outruns a slow server waits for it
  (back-pressure on its output pipe) rather than filling the agent's memory.
- Secret values (``mask``, from the claim) are replaced by ``[MASKED]`` as the output is
  written, before it is buffered (``masking.LogMasker``): no chunk sent, retried or resynced,
  nor the debug log, ever holds one, even when it is split across writes. A write that ends
  in what may be the start of a secret holds those few bytes back until the next write
  shows whether it is one, or ``close``.

Job output never reaches the agent's console; with the agent's logging at debug level,
each line is also logged as ``job_output``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable
from typing import Protocol

import structlog

from ferrous.agent.masking import LogMasker
from ferrous.agent.remote.client import AgentProtocolError, LeaseLost

log = structlog.get_logger(__name__)

FLUSH_INTERVAL = 0.2
FLUSH_BYTES = 256 * 1024
MAX_CHUNK = 1024 * 1024  # the server takes up to 4 MiB
MAX_BUFFER = 32 * 1024 * 1024
HISTORY = 4 * 1024 * 1024
MAX_RESYNCS = 3


class LogAppender(Protocol):
    async def append_log(self, job_id: str, offset: int, data: bytes) -> int: ...


def debug_enabled() -> bool:
    """Whether the agent's logging was set to debug level. A level of NOTSET (structlog's
    default, when nobody configured it) does not count: it would print every job line."""
    probe = structlog.get_logger(__name__)  # fresh: the configuration as it is now
    level = getattr(probe, "get_effective_level", None)
    try:
        effective = level() if callable(level) else logging.NOTSET
    except Exception:  # a logger factory that cannot tell
        return False
    return isinstance(effective, int) and logging.NOTSET < effective <= logging.DEBUG


class LogShipper:
    """One job's log; see the module docstring. Implements ``job_runner.JobLog``.

    ``start`` and ``finish`` are called on the event loop; ``write``, ``note``,
    ``end_line`` and ``close`` from any thread (the job's).
    """

    def __init__(
        self,
        client: LogAppender,
        job_id: str,
        *,
        flush_interval: float = FLUSH_INTERVAL,
        flush_bytes: int = FLUSH_BYTES,
        max_chunk: int = MAX_CHUNK,
        max_buffer: int = MAX_BUFFER,
        history: int = HISTORY,
        on_lease_lost: Callable[[], None] | None = None,
        start_offset: int = 0,
        mask: Iterable[str] = (),
    ) -> None:
        self.job_id = job_id
        self.masker = LogMasker(mask)  # used under ``_lock`` only
        self._client = client
        self._interval = flush_interval
        self._flush_bytes = flush_bytes
        self._max_chunk = max_chunk
        self._max_buffer = max_buffer
        self._history_limit = history
        self._on_lease_lost = on_lease_lost
        self._lock = threading.Lock()
        self._space = threading.Condition(self._lock)
        self._buffer = bytearray()
        self._signaled = False
        self._closed = False
        self._stopped = False
        self._ends_line = True
        self._queue: deque[bytes] = deque()  # taken from the buffer, not yet confirmed
        self._history: deque[tuple[int, bytes]] = deque()  # confirmed (offset, chunk)
        self._history_size = 0
        self._resyncs = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._debug = debug_enabled()
        self._line_tail = b""
        #: Bytes the server confirmed: where the next chunk goes. A retried job's log goes on
        #: after its earlier attempts' (the claim says where).
        self.offset = start_offset
        self.written = 0
        self.dropped = 0
        self.chunks = 0
        #: Why shipping stopped early ("lease_lost", "server_unavailable", ...), or None.
        self.stopped_reason: str | None = None

    @property
    def lease_lost(self) -> bool:
        return self.stopped_reason == "lease_lost"

    # -- the event loop's side -------------------------------------------------------------

    def start(self) -> None:
        """Start shipping (on the event loop that runs the client)."""
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._wake = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name=f"log shipper {self.job_id}")

    async def finish(self) -> None:
        """Wait until all that was written before ``close`` is shipped, or shipping stopped."""
        if self._task is not None:
            await asyncio.shield(self._task)

    def abort(self) -> None:
        """Stop shipping now and drop what is not shipped yet."""
        self._stop("aborted")
        if self._task is not None:
            self._task.cancel()

    async def _run(self) -> None:
        while True:
            await self._wait_for_data()
            while True:
                if not self._queue:
                    self._queue.extend(self._take())
                    if not self._queue:
                        break
                if not await self._send_first():
                    return
            with self._lock:
                if self._closed and not self._buffer:
                    return

    async def _wait_for_data(self) -> None:
        assert self._wake is not None
        self._wake.clear()
        with self._lock:
            if self._closed or len(self._buffer) >= self._flush_bytes:
                return
            self._signaled = False
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), self._interval)

    def _take(self) -> list[bytes]:
        with self._lock:
            data, self._buffer = self._buffer, bytearray()
            self._space.notify_all()
        size = self._max_chunk
        if len(data) <= size:
            return [bytes(data)] if data else []
        with memoryview(data) as view:
            return [bytes(view[start : start + size]) for start in range(0, len(data), size)]

    async def _send_first(self) -> bool:
        chunk = self._queue[0]
        try:
            await self._client.append_log(self.job_id, self.offset, chunk)
        except LeaseLost as exc:
            if exc.size is None or exc.size >= self.offset:  # not a gap: the lease is gone
                self._stop("lease_lost", exc.message)
            elif self._resync(exc.size):
                return True
            else:
                self._stop("log_gap", exc.message)
            return False
        except AgentProtocolError as exc:
            self._stop(_reason(exc), exc.message)
            return False
        self._queue.popleft()
        self._history.append((self.offset, chunk))
        self._history_size += len(chunk)
        while len(self._history) > 1 and self._history_size > self._history_limit:
            self._history_size -= len(self._history.popleft()[1])
        self.offset += len(chunk)
        self.chunks += 1
        return True

    def _resync(self, size: int) -> bool:
        """The server's log ends before our offset: send again from there, if we can."""
        if self._resyncs >= MAX_RESYNCS or not self._history or self._history[0][0] > size:
            return False
        log.warning("job_log_resync", job_id=self.job_id, offset=self.offset, server_size=size)
        self._resyncs += 1
        while self.offset > size:
            start, chunk = self._history.pop()
            self._history_size -= len(chunk)
            self._queue.appendleft(chunk[max(0, size - start) :])
            self.offset = max(start, size)
        return True

    def _stop(self, reason: str, detail: str = "") -> None:
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            self.dropped += len(self._buffer) + sum(len(c) for c in self._queue)
            self._buffer = bytearray()
            self._queue.clear()
            self._space.notify_all()
        self.stopped_reason = reason
        if reason == "aborted":
            return
        event = "job_log_lease_lost" if reason == "lease_lost" else "job_log_stopped"
        log.warning(event, job_id=self.job_id, reason=reason, detail=detail, offset=self.offset)
        if reason == "lease_lost" and self._on_lease_lost is not None:
            self._on_lease_lost()

    # -- the job's side ----------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        if not data:
            return
        with self._lock:
            if threading.get_ident() != self._loop_thread:  # never block the event loop
                while len(self._buffer) >= self._max_buffer and not self._stopped:
                    self._space.wait(1.0)
            self.written += len(data)
            if self._stopped:
                self.dropped += len(data)
                return
            shipped = self.masker.feed(data)
            self._buffer += shipped
            self._ends_line = data[-1:] == b"\n"
            wake = not self._signaled and len(self._buffer) >= self._flush_bytes
            if wake:
                self._signaled = True
        if wake:
            self._wake_up()
        if self._debug:
            self._log_lines(shipped)

    def end_line(self) -> None:
        with self._lock:
            unfinished = not self._ends_line
        if unfinished:
            self.write(b"\n")

    def note(self, text: str) -> None:
        self.end_line()
        self.write(text.encode("utf-8", "replace") + b"\n")

    def close(self) -> None:
        """No more output: ship the rest now (``finish`` waits for it)."""
        self.end_line()
        with self._lock:
            rest = self.masker.flush()  # a tail held back in case a secret went on
            if not self._stopped:
                self._buffer += rest
            self._closed = True
            self._space.notify_all()
        self._wake_up()
        if self._debug and (rest or self._line_tail):
            self._log_lines(rest + b"\n")

    def _wake_up(self) -> None:
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is shipping
                loop.call_soon_threadsafe(wake.set)

    def _log_lines(self, data: bytes) -> None:
        lines = (self._line_tail + data).split(b"\n")
        self._line_tail = lines.pop()
        for line in lines:
            log.debug("job_output", job_id=self.job_id, line=line.decode("utf-8", "replace"))


def _reason(exc: AgentProtocolError) -> str:
    name = type(exc).__name__
    return "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")
