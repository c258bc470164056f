"""Real ``ferrous serve`` and ``ferrous agent`` processes for the benchmarks, and /proc sampling.

Every process is started in a session of its own, so a Ctrl-C in the terminal reaches only the
benchmark, which then stops them in order: agents first (two SIGTERMs: stop claiming, cancel
the jobs), then whatever their jobs left behind (processes whose working directory is in an
agent's work dir), then the servers. ``Processes.stop_all`` is idempotent and runs from the
benchmark's ``finally``.

Children get the environment of this process without ``PYTHONDONTWRITEBYTECODE`` (this
workspace may set it; every interpreter would then compile every module at start-up) nor
``FERROUS_URL``, with the first admin's password and no request limits (``_auth``), plus what
the caller adds. A started server's ``token`` is a personal API token of that admin.

``Sampler`` walks /proc once a second (one ``stat`` read per process) and records, per group of
processes, CPU% (of one core: 200% is both cores of a two-core machine) and RSS, the whole
machine's busy share, and how many job scripts (``sleep`` under an agent's bash) are alive.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _auth import admin_token, bearer, with_admin

LISTENING = re.compile(r"listening on (http://\S+)")
TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
#: Other programs worth watching, by their ``comm``.
SERVICES = {"postgres": "postgres", "redis-server": "redis", "beam.smp": "rabbitmq"}


def _cmdline(pid: int) -> str:
    try:
        return (
            Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        )
    except OSError:
        return ""


def service_group(
    pid: int, comm: str, database: str, redis_port: str, rabbitmq: bool
) -> str | None:
    """Which service a process belongs to, if it serves this benchmark (the machine may run
    other test instances): PostgreSQL backends of ``database`` only (the postmaster and its
    helpers are left out), the Redis on ``redis_port``, the RabbitMQ node not under /tmp."""
    group = SERVICES.get(comm)
    if group is None:
        return None
    line = _cmdline(pid)
    if group == "postgres":
        return group if database and f" {database} " in line else None
    if group == "redis":
        return group if redis_port and line.rstrip().endswith(f":{redis_port}") else None
    return group if rabbitmq and "/tmp/" not in line else None


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {**os.environ}
    for name in ("PYTHONDONTWRITEBYTECODE", "FERROUS_URL", "FERROUS_DATABASE_URL"):
        env.pop(name, None)
    env.update(extra or {})
    return with_admin(env)


@dataclass
class Child:
    kind: str  # "server" or "agent"
    name: str
    proc: subprocess.Popen[str]
    log: Path
    url: str = ""
    work_dir: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    token: str = ""  # a server's: its first admin's API token

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.token) if self.token else {}

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def tail(self, chars: int = 2000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


class Processes:
    """The servers and agents this benchmark started; ``stop_all`` ends every one of them."""

    def __init__(self) -> None:
        self.servers: list[Child] = []
        self.agents: list[Child] = []

    def _spawn(self, argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[str]:
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("a") as errors:
            return subprocess.Popen(
                argv,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=errors,
                text=True,
                start_new_session=True,
            )

    def start_server(self, data_dir: Path, env: dict[str, str], timeout: float = 90.0) -> Child:
        data_dir.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-m", "ferrous", "serve", "--port", "0", "--agents", "0"]
        argv += ["--data-dir", str(data_dir)]
        log = data_dir / "server.log"
        child = Child("server", data_dir.name, self._spawn(argv, env, log), log)
        self.servers.append(child)
        assert child.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = child.proc.stdout.readline()
            found = LISTENING.search(line)
            if found:
                child.url = found[1]
                if "FERROUS_ADMIN_PASSWORD" in env:
                    child.token = admin_token(child.url, env["FERROUS_ADMIN_PASSWORD"])
                return child
            if not line and not child.alive():
                break
        raise RuntimeError(f"server did not start; {log}:\n{child.tail()}")

    def start_agents(
        self,
        specs: Iterable[tuple[str, str, Path]],  # (name, server url, work dir)
        *,
        token_for: Callable[[str], str],
        capacity: int,
        env: dict[str, str],
        timeout: float = 120.0,
    ) -> list[Child]:
        """Start every agent at once, then wait until each says it runs."""
        started = []
        for name, url, work_dir in specs:
            work_dir.mkdir(parents=True, exist_ok=True)
            argv = [sys.executable, "-m", "ferrous", "agent", "--server", url]
            argv += ["--token", token_for(url), "--capacity", str(capacity)]
            argv += ["--work-dir", str(work_dir), "--name", name, "--kill-grace", "1"]
            log = work_dir.parent / f"{name}.log"
            child = Child("agent", name, self._spawn(argv, env, log), log, url, work_dir)
            self.agents.append(child)
            started.append(child)
        deadline = time.monotonic() + timeout
        for child in started:
            assert child.proc.stdout is not None
            line = ""
            while time.monotonic() < deadline:
                line = child.proc.stdout.readline()
                if "running" in line or (not line and not child.alive()):
                    break
            if "running" not in line:
                raise RuntimeError(f"agent {child.name} did not start: {line!r}\n{child.tail()}")
        return started

    def stop_agents(self) -> None:
        for child in self.agents:  # second signal: cancel the running jobs
            for _ in range(2):
                if child.alive():
                    child.proc.send_signal(signal.SIGTERM)
        _wait_or_kill(self.agents, 30.0)
        roots = [child.work_dir for child in self.agents if child.work_dir is not None]
        for pid in processes_in(roots):  # job processes left behind by a killed agent
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        self.agents = []

    def stop_all(self) -> None:
        self.stop_agents()
        for child in self.servers:
            if child.alive():
                child.proc.send_signal(signal.SIGTERM)
        _wait_or_kill(self.servers, 30.0)
        self.servers = []


def _wait_or_kill(children: list[Child], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    for child in children:
        try:
            child.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.proc.kill()
            child.proc.wait()
        if child.proc.stdout is not None:
            child.proc.stdout.close()


def processes_in(folders: list[Path]) -> list[int]:
    """Processes whose working directory is inside one of ``folders``."""
    found = []
    if not folders:
        return found
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cwd = Path(os.readlink(entry / "cwd"))
        except OSError:
            continue
        if any(cwd.is_relative_to(folder) for folder in folders):
            found.append(int(entry.name))
    return found


@dataclass(frozen=True, slots=True)
class _Stat:
    comm: str
    ppid: int
    ticks: int  # utime + stime
    child_ticks: int  # cutime + cstime: children waited for (git, bash)
    rss: int  # bytes


def _read_stat(pid: str) -> _Stat | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as file:
            raw = file.read()
    except OSError:
        return None
    head, _, rest = raw.rpartition(b")")
    fields = rest.split()
    # fields[0] is state (field 3); utime is field 14, rss field 24
    return _Stat(
        comm=head.split(b"(", 1)[1].decode(errors="replace"),
        ppid=int(fields[1]),
        ticks=int(fields[11]) + int(fields[12]),
        child_ticks=int(fields[13]) + int(fields[14]),
        rss=int(fields[21]) * PAGE,
    )


def machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs."""
    with open("/proc/stat") as file:
        values = [int(x) for x in file.readline().split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


class Sampler(threading.Thread):
    """Samples CPU and RSS of the servers (each), the agents (together), the services and the
    machine every ``interval`` seconds, in a thread, until ``stop``."""

    def __init__(
        self,
        servers: list[Child],
        agents: list[Child],
        *,
        database: str = "",
        redis_port: str = "",
        rabbitmq: bool = False,
        interval: float = 1.0,
    ) -> None:
        super().__init__(name="sampler", daemon=True)
        self._database = database
        self._redis_port = redis_port
        self._rabbitmq = rabbitmq
        self._services: dict[int, str | None] = {}  # pid -> group, looked up once
        self.interval = interval
        self.server_pids = {child.pid: child.name for child in servers}
        self.agent_pids = {child.pid for child in agents}
        self.samples: list[dict[str, Any]] = []
        self.cost_s = 0.0  # this thread's own CPU time
        self._halt = threading.Event()
        self._previous: dict[int, int] = {}
        self._machine = machine_ticks()
        self._last = time.time()

    def run(self) -> None:
        self._walk(record=False)
        next_at = time.monotonic() + self.interval
        while not self._halt.wait(max(0.0, next_at - time.monotonic())):
            next_at += self.interval
            started = time.thread_time()
            self._walk(record=True)
            self.cost_s += time.thread_time() - started

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=5)

    def _walk(self, *, record: bool) -> None:
        now = time.time()
        stats: dict[int, _Stat] = {}
        for name in os.listdir("/proc"):
            if name.isdigit():
                stat = _read_stat(name)
                if stat is not None:
                    stats[int(name)] = stat
        busy, total = machine_ticks()
        elapsed = max(1e-9, now - self._last)
        self._last = now
        previous = self._previous
        current: dict[int, int] = {}
        cpu: dict[str, float] = {}
        rss: dict[str, float] = {}

        def add(group: str, pid: int, ticks: int, size: int) -> None:
            current[pid] = ticks
            delta = ticks - previous.get(pid, ticks)  # a new process counts from now
            cpu[group] = cpu.get(group, 0.0) + max(0, delta) / TICK / elapsed * 100
            rss[group] = rss.get(group, 0.0) + size / 2**20

        scripts = 0
        for pid, stat in stats.items():
            if pid in self.server_pids:
                add(self.server_pids[pid], pid, stat.ticks, stat.rss)
                # its git subprocesses (resolve, archive), once reaped; pid negated: a key
                add(f"{self.server_pids[pid]}-children", -pid, stat.child_ticks, 0)
            elif pid in self.agent_pids:
                add("agents", pid, stat.ticks + stat.child_ticks, stat.rss)
            elif stat.comm in SERVICES:
                if pid not in self._services:
                    self._services[pid] = service_group(
                        pid, stat.comm, self._database, self._redis_port, self._rabbitmq
                    )
                group = self._services[pid]
                if group is not None:
                    add(group, pid, stat.ticks, stat.rss)
            elif stat.comm == "sleep":
                parent = stats.get(stat.ppid)
                if parent is not None and parent.ppid in self.agent_pids:
                    scripts += 1
        self._previous = current
        machine = (busy - self._machine[0]) / max(1, total - self._machine[1]) * 100
        self._machine = (busy, total)
        if record:
            self.samples.append(
                {
                    "t": now,
                    "cpu": {k: round(v, 1) for k, v in cpu.items()},
                    "rss_mb": {k: round(v, 1) for k, v in rss.items()},
                    "machine_busy_pct": round(machine, 1),
                    "scripts": scripts,
                }
            )

    def window(self, start: float, end: float) -> dict[str, Any]:
        """Mean (``cpu_pct``) and max CPU%, max RSS per group, machine busy% between two
        moments."""
        chosen = [s for s in self.samples if start < s["t"] <= end + 0.5]
        if not chosen:
            return {"samples": 0}
        groups = sorted(
            {g for s in chosen for g in s["cpu"]} | {g for s in chosen for g in s["rss_mb"]}
        )
        out: dict[str, Any] = {"samples": len(chosen), "seconds": round(end - start, 1)}
        for group in groups:
            cpus = [s["cpu"].get(group, 0.0) for s in chosen]
            sizes = [s["rss_mb"].get(group, 0.0) for s in chosen]
            out[group] = {
                "cpu_pct": round(sum(cpus) / len(cpus), 1),
                "cpu_pct_max": round(max(cpus), 1),
                "rss_mb_max": round(max(sizes), 1),
            }
        busy = [s["machine_busy_pct"] for s in chosen]
        out["machine_busy_pct_mean"] = round(sum(busy) / len(busy), 1)
        out["scripts_max"] = max(s["scripts"] for s in chosen)
        return out
