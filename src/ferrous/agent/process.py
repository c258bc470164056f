"""A child process in its own process group, its output pumped to a sink until it is gone.

Killing only the shell would leave its children (a ``sleep``, a dev server started with ``&``)
running and holding the output pipe open, so the job would never end. Every job shell starts
a new session, and every kill goes to the whole group: SIGTERM first so that programs can
clean up, SIGKILL after a grace period for those that do not.

The pipe is read in large chunks with ``os.read`` and handed on as they come: a job that
prints tens of megabytes must not be slowed down by per-line work here.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

from ferrous.agent.executor import OutputSink

CHUNK = 1 << 20
PIPE_SIZE = 1 << 20
#: How often the pump looks at the clock and at the leader when the pipe is quiet.
TICK = 0.1
#: How long to keep reading after SIGKILL, for output of a process that left the group.
DRAIN_AFTER_KILL = 1.0


class ProcessOutcome(NamedTuple):
    returncode: int  # as a shell reports it: 128 + N for a process killed by signal N
    timed_out: bool
    terminated: bool  # killed because terminate() was called (a cancel)


class ProcessGroup:
    """One running process group; ``terminate`` may be called from any thread."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        cwd: Path,
        env: Mapping[str, str],
        kill_grace: float,
    ) -> None:
        self._grace = kill_grace
        self._lock = threading.Lock()
        self._term_at: float | None = None
        self._kill_at: float | None = None
        self._terminated = False
        self._proc = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            bufsize=0,
        )
        self.pid = self._proc.pid
        assert self._proc.stdout is not None
        self._fd = self._proc.stdout.fileno()
        with contextlib.suppress(OSError, AttributeError):  # Linux only, best effort
            fcntl.fcntl(self._fd, fcntl.F_SETPIPE_SZ, PIPE_SIZE)

    def terminate(self) -> None:
        """Stop the whole group: SIGTERM now, SIGKILL once the grace period has passed."""
        with self._lock:
            self._terminated = True
        self._signal_term()

    def _signal_term(self) -> None:
        with self._lock:
            if self._term_at is not None:
                return
            self._term_at = time.monotonic()
        self._killpg(signal.SIGTERM)
        if self._grace <= 0:
            self._signal_kill()

    def _signal_kill(self) -> None:
        with self._lock:
            if self._kill_at is not None:
                return
            self._kill_at = time.monotonic()
        self._killpg(signal.SIGKILL)

    def _killpg(self, signum: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signum)

    def group_alive(self) -> bool:
        try:
            os.killpg(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def pump(self, output: OutputSink, *, timeout: float | None) -> ProcessOutcome:
        """Copy output to ``output`` until every process holding the pipe is gone."""
        deadline = None if timeout is None else time.monotonic() + timeout
        timed_out = False
        poller = select.poll()
        poller.register(self._fd, select.POLLIN | select.POLLHUP | select.POLLERR)
        try:
            while True:
                now = time.monotonic()
                if deadline is not None and now >= deadline and self._term_at is None:
                    timed_out = True
                    self._signal_term()
                self._escalate(now)
                if self._kill_at is not None and now - self._kill_at > DRAIN_AFTER_KILL:
                    break  # a process that escaped the group still holds the pipe
                wait = TICK if deadline is None else max(0.0, min(TICK, deadline - now))
                if poller.poll(wait * 1000):
                    data = os.read(self._fd, CHUNK)
                    if not data:
                        break
                    output.write(data)
                elif self._proc.poll() is not None:
                    # The shell is gone, but something it started still holds the pipe.
                    self._signal_term()
        finally:
            self._proc.stdout.close()  # type: ignore[union-attr]  # set by PIPE above
        returncode = self._proc.wait()
        if self.group_alive():  # leftovers that closed their output: no job outlives itself
            self._killpg(signal.SIGKILL)
        if returncode < 0:
            returncode = 128 - returncode
        return ProcessOutcome(returncode, timed_out, self._terminated)

    def _escalate(self, now: float) -> None:
        term_at = self._term_at
        if term_at is not None and self._kill_at is None and now - term_at >= self._grace:
            self._signal_kill()
