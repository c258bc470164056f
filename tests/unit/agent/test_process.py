"""ProcessGroup with real processes: what ends a job, what it costs while idle, what it leaves.

The pump's wake-ups are counted by wrapping ``select.poll``: an idle job must block in one
poll, not tick. Where there is no pidfd (or no self-pipe) the pump falls back to ticking; those
paths are forced by taking ``os.pidfd_open`` (or ``os.pipe``) away.
"""

from __future__ import annotations

import errno
import os
import select
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from ferrous.agent.process import DRAIN_AFTER_KILL, TICK, ProcessGroup, ProcessOutcome
from tests.unit.agent.conftest import Collected

BASH = shutil.which("bash") or "bash"
GRACE = 0.3


class CountingPoll:
    """A ``select.poll`` that remembers the timeout of every call."""

    timeouts: list[float | None]

    def __init__(self, timeouts: list[float | None]) -> None:
        self._poll = REAL_POLL()
        self.timeouts = timeouts

    def register(self, fd: int, mask: int) -> None:
        self._poll.register(fd, mask)

    def unregister(self, fd: int) -> None:
        self._poll.unregister(fd)

    def poll(self, timeout: float | None = None) -> list[tuple[int, int]]:
        self.timeouts.append(timeout)
        return self._poll.poll(timeout)


REAL_POLL = select.poll


@pytest.fixture
def polls(monkeypatch: pytest.MonkeyPatch) -> list[float | None]:
    """The timeout of every poll the pump makes."""
    timeouts: list[float | None] = []
    monkeypatch.setattr(select, "poll", lambda: CountingPoll(timeouts))
    return timeouts


def start(script: str, tmp_path: Path, grace: float = GRACE) -> ProcessGroup:
    return ProcessGroup([BASH, "-c", script], cwd=tmp_path, env=dict(os.environ), kill_grace=grace)


class Pumped:
    """The result of pumping a group in a thread of its own, as a job runner does."""

    def __init__(self, group: ProcessGroup, timeout: float | None = None) -> None:
        self.sink = Collected()
        self.outcome: ProcessOutcome | None = None
        self.cpu = 0.0
        self.ended = 0.0
        self._thread = threading.Thread(target=self._run, args=(group, timeout))
        self._thread.start()

    def _run(self, group: ProcessGroup, timeout: float | None) -> None:
        cpu = time.thread_time()
        self.outcome = group.pump(self.sink, timeout=timeout)
        self.cpu = time.thread_time() - cpu
        self.ended = time.monotonic()

    def join(self, limit: float = 10) -> ProcessOutcome:
        self._thread.join(limit)
        assert self.outcome is not None, "pump did not return"
        return self.outcome


def pump(group: ProcessGroup, timeout: float | None = None) -> tuple[ProcessOutcome, Pumped]:
    pumped = Pumped(group, timeout)
    return pumped.join(), pumped


def process_gone(pid: int) -> bool:
    """Dead or a zombie (a zombie is dead, only not yet reaped by its new parent)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


def eventually(condition: Callable[[], bool], limit: float = 2) -> bool:
    until = time.monotonic() + limit
    while not condition():
        if time.monotonic() > until:
            return False
        time.sleep(0.02)
    return True


def wait_gone(pid: int) -> bool:
    return eventually(lambda: process_gone(pid))


def group_gone(group: ProcessGroup) -> bool:
    """Killed children are reaped by init, not by us: until then ``killpg(pgid, 0)`` finds them."""
    return eventually(lambda: not group.group_alive())


def terminate_in(group: ProcessGroup, delay: float) -> Callable[[], float]:
    """Call ``group.terminate()`` from another thread after ``delay``; returns when it did."""
    called: list[float] = []

    def later() -> None:
        called.append(time.monotonic())
        group.terminate()

    timer = threading.Timer(delay, later)
    timer.start()

    def when() -> float:
        timer.join()
        return called[0]

    return when


# An idle job costs nothing.


def test_an_idle_job_blocks_in_one_poll(tmp_path: Path, polls: list[float | None]) -> None:
    outcome, pumped = pump(start("sleep 1", tmp_path))
    assert outcome == ProcessOutcome(0, timed_out=False, terminated=False)
    assert polls[0] is None  # no deadline, nothing due: wait for ever
    assert len(polls) <= 3  # a 0.1 s tick would make about ten
    assert pumped.cpu < 0.05


def test_a_timeout_is_waited_for_exactly(tmp_path: Path, polls: list[float | None]) -> None:
    started = time.monotonic()
    outcome, _ = pump(start("sleep 60", tmp_path), timeout=0.5)
    assert outcome == ProcessOutcome(128 + 15, timed_out=True, terminated=False)
    assert 0.5 <= time.monotonic() - started < 0.5 + 1
    assert polls[0] is not None
    assert 400 < polls[0] <= 500
    assert len(polls) <= 4


# Cancels: terminate() comes from another thread.


def test_terminate_wakes_a_blocked_pump_at_once(tmp_path: Path, polls: list[float | None]) -> None:
    group = start("sleep 60", tmp_path)
    terminated = terminate_in(group, 0.3)
    outcome, pumped = pump(group)
    assert outcome == ProcessOutcome(128 + 15, timed_out=False, terminated=True)
    assert pumped.ended - terminated() < 0.5
    assert polls[0] is None
    assert group_gone(group)


def test_terminate_escalates_after_the_grace_period(
    tmp_path: Path, polls: list[float | None]
) -> None:
    group = start("trap '' TERM; sleep 60 & wait", tmp_path)
    terminated = terminate_in(group, 0.2)
    outcome, pumped = pump(group)
    assert outcome == ProcessOutcome(128 + 9, timed_out=False, terminated=True)
    assert GRACE - 0.05 <= pumped.ended - terminated() < GRACE + 1
    assert len(polls) <= 6
    assert group_gone(group)


def test_terminate_before_pump_stops_the_job(tmp_path: Path) -> None:
    group = start("sleep 60", tmp_path)
    group.terminate()
    started = time.monotonic()
    outcome, _ = pump(group)
    assert outcome.terminated
    assert time.monotonic() - started < GRACE + 1


def test_terminate_after_pump_is_harmless(tmp_path: Path) -> None:
    group = start("true", tmp_path)
    outcome, _ = pump(group)
    assert outcome == ProcessOutcome(0, timed_out=False, terminated=False)
    group.terminate()
    group.terminate()


# What ends a job, and what it reports.


@pytest.mark.parametrize(
    ("script", "returncode"),
    [("exit 7", 7), ("kill -KILL $$", 128 + 9), ("kill -TERM $$", 128 + 15)],
)
def test_exit_codes_are_reported_as_a_shell_does(
    tmp_path: Path, script: str, returncode: int
) -> None:
    outcome, _ = pump(start(script, tmp_path))
    assert outcome == ProcessOutcome(returncode, timed_out=False, terminated=False)


def test_output_arrives_complete_and_in_order(tmp_path: Path) -> None:
    outcome, pumped = pump(start("seq 1 200000", tmp_path))
    assert outcome.returncode == 0
    assert pumped.sink.text == "".join(f"{n}\n" for n in range(1, 200001))


def test_a_background_process_holding_the_pipe_is_stopped(tmp_path: Path) -> None:
    started = time.monotonic()
    outcome, pumped = pump(start("sleep 60 & echo $!; exit 3", tmp_path))
    assert outcome == ProcessOutcome(3, timed_out=False, terminated=False)
    assert time.monotonic() - started < TICK + 1
    assert wait_gone(int(pumped.sink.text))


def test_a_process_escaping_the_group_is_drained_then_left(tmp_path: Path) -> None:
    started = time.monotonic()
    outcome, pumped = pump(start("setsid sleep 60 & echo $!", tmp_path))
    escaped = int(pumped.sink.text)
    try:
        assert outcome == ProcessOutcome(0, timed_out=False, terminated=False)
        took = time.monotonic() - started
        assert TICK + GRACE + DRAIN_AFTER_KILL - 0.05 <= took < TICK + GRACE + DRAIN_AFTER_KILL + 1
    finally:
        os.kill(escaped, 9)


# Without a pidfd (another OS, an old kernel) or a self-pipe (no fds left), the pump ticks.


def no_pidfd(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(os, "pidfd_open", raising=False)


def failing_pidfd(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(pid: int, flags: int = 0) -> int:
        raise OSError(errno.ENOSYS, "Function not implemented")

    monkeypatch.setattr(os, "pidfd_open", refuse, raising=False)


def no_self_pipe(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse() -> tuple[int, int]:
        raise OSError(errno.EMFILE, "Too many open files")

    monkeypatch.setattr(os, "pipe", refuse)  # after Popen, which needs pipes of its own


DEGRADED: dict[str, Callable[[pytest.MonkeyPatch], None]] = {
    "no pidfd": no_pidfd,
    "failing pidfd": failing_pidfd,
    "no self-pipe": no_self_pipe,
}


@pytest.fixture(params=sorted(DEGRADED))
def degrade(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    return lambda: DEGRADED[request.param](monkeypatch)


def test_fallback_ends_a_job_normally(
    tmp_path: Path, degrade: Callable[[], None], polls: list[float | None]
) -> None:
    group = start("sleep 0.5; echo done; exit 4", tmp_path)
    degrade()
    outcome, pumped = pump(group)
    assert outcome == ProcessOutcome(4, timed_out=False, terminated=False)
    assert pumped.sink.text == "done\n"
    assert polls[0] == pytest.approx(TICK * 1000)  # it ticks


def test_fallback_stops_a_background_process_holding_the_pipe(
    tmp_path: Path, degrade: Callable[[], None]
) -> None:
    group = start("sleep 60 & echo $!", tmp_path)
    degrade()
    started = time.monotonic()
    outcome, pumped = pump(group)
    assert outcome == ProcessOutcome(0, timed_out=False, terminated=False)
    assert time.monotonic() - started < TICK + 1
    assert wait_gone(int(pumped.sink.text))


def test_fallback_sees_terminate_and_timeout(tmp_path: Path, degrade: Callable[[], None]) -> None:
    canceled, timing_out = start("sleep 60", tmp_path), start("sleep 60", tmp_path)
    degrade()
    terminated = terminate_in(canceled, 0.2)
    outcome, pumped = pump(canceled)
    assert outcome == ProcessOutcome(128 + 15, timed_out=False, terminated=True)
    assert pumped.ended - terminated() < TICK + 0.5
    outcome, _ = pump(timing_out, timeout=0.3)
    assert outcome == ProcessOutcome(128 + 15, timed_out=True, terminated=False)


# No fd outlives its job.


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
def test_no_file_descriptor_outlives_its_job(tmp_path: Path) -> None:
    pump(start("true", tmp_path))  # warm up whatever opens once
    before = open_fds()
    for round_ in range(5):
        pump(start("echo hi", tmp_path))
        pump(start("exit 1", tmp_path))
        pump(start("sleep 60", tmp_path), timeout=0.05)
        pump(start("sleep 60 & echo started", tmp_path))
        group = start("sleep 60", tmp_path)
        terminated = terminate_in(group, 0.02 * round_)
        pump(group)
        terminated()
    assert open_fds() == before


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
def test_a_group_never_pumped_holds_only_its_output_pipe(tmp_path: Path) -> None:
    before = open_fds()
    group = start("true", tmp_path)
    assert len(open_fds() - before) == 1  # pidfd and self-pipe are opened by pump, for its run
    pump(group)
    assert open_fds() == before
