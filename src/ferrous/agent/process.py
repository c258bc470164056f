"""A child process in its own process group, its output pumped to a sink until it is gone.

Killing only the shell would leave its children (a ``sleep``, a dev server started with ``&``)
running and holding the output pipe open, so the job would never end. Every job shell starts
a new session, and every kill goes to the whole group: SIGTERM first so that programs can
clean up, SIGKILL after a grace period for those that do not.

The pipe is read in large chunks with ``os.read`` and handed on as they come: a job that
prints tens of megabytes must not be slowed down by per-line work here.

An idle job costs nothing: the pump blocks in ``poll`` until output arrives, the shell exits
(a pidfd, Linux >= 5.3), ``terminate`` writes to a self-pipe, or a deadline is due (the
timeout, the grace period, the drain after SIGKILL). Where there is no pidfd (another OS, an
old kernel) it looks at the shell every ``TICK`` instead.
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
#: How long the pipe must stay quiet after the shell exited before its leftovers get SIGTERM;
#: also how often the shell is looked at where there is no pidfd to learn of its exit.
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
        self._wake_fd: int | None = None  # the self-pipe's write end, while pump runs
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
        self._stdout = self._proc.stdout
        self._fd = self._stdout.fileno()
        with contextlib.suppress(OSError, AttributeError):  # Linux only, best effort
            fcntl.fcntl(self._fd, fcntl.F_SETPIPE_SZ, PIPE_SIZE)

    def terminate(self) -> None:
        """Stop the whole group: SIGTERM now, SIGKILL once the grace period has passed."""
        with self._lock:
            self._terminated = True
        self._signal_term()
        with self._lock:  # under the lock: pump closes the fd under it, so it is never reused
            if self._wake_fd is not None:
                with contextlib.suppress(BlockingIOError):  # full: a wake-up is pending anyway
                    os.write(self._wake_fd, b"\0")

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
        with contextlib.ExitStack() as fds:  # closes, in reverse order, all that it opened
            fds.callback(self._stdout.close)
            pidfd = _open_pidfd(self.pid)
            if pidfd is not None:
                fds.callback(os.close, pidfd)
            waker = _open_self_pipe()
            wake_read = None
            if waker is not None:
                wake_read, wake_write = waker
                fds.callback(os.close, wake_read)
                fds.callback(os.close, wake_write)
                fds.callback(self._publish_wake_fd, None)  # runs first: before the close
                self._publish_wake_fd(wake_write)
            timed_out = self._copy(output, deadline, pidfd, wake_read)
        returncode = self._proc.wait()
        if self.group_alive():  # leftovers that closed their output: no job outlives itself
            self._killpg(signal.SIGKILL)
        if returncode < 0:
            returncode = 128 - returncode
        return ProcessOutcome(returncode, timed_out, self._terminated)

    def _publish_wake_fd(self, fd: int | None) -> None:
        with self._lock:
            self._wake_fd = fd

    def _copy(
        self, output: OutputSink, deadline: float | None, pidfd: int | None, wake: int | None
    ) -> bool:
        """The pump's loop, until the pipe is closed or drained; whether the job timed out."""
        timed_out = False
        shell_gone = False
        # Without a pidfd the shell must be looked at now and then; without a self-pipe, too,
        # so that a cancel is seen (then its deadlines take over).
        must_tick = pidfd is None or wake is None
        poller = select.poll()
        poller.register(self._fd, select.POLLIN | select.POLLHUP | select.POLLERR)
        for fd in (pidfd, wake):
            if fd is not None:
                poller.register(fd, select.POLLIN)
        while True:
            now = time.monotonic()
            if deadline is not None and now >= deadline and self._term_at is None:
                timed_out = True
                self._signal_term()
            self._escalate(now)
            if self._kill_at is not None and now - self._kill_at >= DRAIN_AFTER_KILL:
                break  # a process that escaped the group still holds the pipe
            tick = self._term_at is None and (must_tick or shell_gone)
            ready = {fd for fd, _ in poller.poll(self._wait_ms(now, deadline, tick))}
            if wake is not None and wake in ready:
                _drain(wake)
            if pidfd is not None and pidfd in ready:
                poller.unregister(pidfd)  # it stays readable: polling it again would spin
                shell_gone = True
            if self._fd in ready:
                data = os.read(self._fd, CHUNK)
                if not data:
                    break
                output.write(data)
            elif not ready and tick and (shell_gone or self._proc.poll() is not None):
                # The shell is gone, but something it started still holds the pipe.
                self._signal_term()
        return timed_out

    def _wait_ms(self, now: float, deadline: float | None, tick: bool) -> float | None:
        """How long poll may block: until the next thing is due, or for ever (``None``)."""
        term_at, kill_at = self._term_at, self._kill_at
        due = [now + TICK] if tick else []
        if deadline is not None and term_at is None:
            due.append(deadline)
        if term_at is not None and kill_at is None:
            due.append(term_at + self._grace)
        if kill_at is not None:
            due.append(kill_at + DRAIN_AFTER_KILL)
        return max(0.0, (min(due) - now) * 1000) if due else None

    def _escalate(self, now: float) -> None:
        term_at = self._term_at
        if term_at is not None and self._kill_at is None and now - term_at >= self._grace:
            self._signal_kill()


def _open_pidfd(pid: int) -> int | None:
    """A fd that turns readable when ``pid`` exits, or ``None`` where the OS has none."""
    if not hasattr(os, "pidfd_open"):
        return None
    try:
        return os.pidfd_open(pid)  # close-on-exec, as every pidfd
    except OSError:  # ENOSYS before Linux 5.3, or a seccomp filter that forbids it
        return None


def _open_self_pipe() -> tuple[int, int] | None:
    """A non-blocking pipe (read end, write end) whose write end wakes the poll."""
    try:
        ends = os.pipe()  # close-on-exec, as every fd Python opens
    except OSError:  # out of file descriptors: tick instead
        return None
    for fd in ends:
        os.set_blocking(fd, False)
    return ends


def _drain(fd: int) -> None:
    with contextlib.suppress(BlockingIOError):
        while os.read(fd, 4096):
            pass
