"""Benchmark: many concurrently running jobs on real ``ferrous serve`` and ``ferrous agent``
processes, and dispatch throughput per broker and with two servers; prints one JSON document.

    .venv/bin/python bench/concurrency.py [--jobs 1000 --agents 20 --capacity 50 --sleep 30]
        [--database sqlite|postgres] [--broker memory|redis|rabbitmq|all] [--servers 1|2|1,2]
        [--scenario hold|throughput|all]

Each configuration (database x broker x servers; ``--broker`` and ``--servers`` take
comma-separated lists) gets fresh servers (``ferrous serve --agents 0``, a new PostgreSQL
database or a new SQLite data dir), ``--agents`` real ``ferrous agent`` processes of
``--capacity`` each, split between the servers, and a local git repository per pipeline.

- ``hold``: ``--jobs`` jobs running ``date +%s.%N; sleep --sleep`` at once, as builds of
  ``--jobs-per-build`` jobs (the pipeline language caps ``parallel`` at 200: a larger build
  gets several parallel jobs). Triggered by 8 clients, split between the servers.
  ``ramp``: from the first trigger to every job claimed (the server's ``started_at``) and to
  every script running (the stamp it prints); ``claim_latency`` per job, from the build's
  ``created_at`` to ``started_at``; ``queue_to_claim`` from the job's ``queued_at``;
  ``trigger_to_script`` to the script's stamp. While all run: ``quiet`` (``--quiet-seconds``
  of nothing but the jobs) then REST load on ``GET /api/v1/builds?limit=50`` and on
  ``GET /api/v1/builds/{id}`` of one build (``wrk`` when installed, else an asyncio
  client; ``--rest-connections`` keep-alive connections, ``--rest-seconds`` each); the same
  load again once every job finished (``rest_after``: same data, no jobs), for comparison.
  ``finish``: first trigger to the last ``finished_at``. On PostgreSQL,
  ``postgres_per_claimed_job_during_ramp``: transactions (commits, rollbacks) and rows per job
  claimed during the ramp, from ``pg_stat_database`` (a claim that finds nothing rolls back).
- ``throughput``: ``--throughput-builds`` builds of ``--throughput-jobs-per-build`` jobs
  running ``true``, triggered by 8 clients split between the servers; builds/s and jobs/s
  from the first trigger to the last ``finished_at``, claim latency as above, CPU time per
  job of each process group (``cpu_ms_per_job``) and PostgreSQL work per job.

``resources`` per phase come from /proc once a second: CPU% (of one core; a two-core machine
has 200%) and RSS of each server (``-children``: its git subprocesses), of all agents
together (their jobs' git and bash included once reaped), of this run's PostgreSQL backends,
Redis and RabbitMQ, the machine's busy share, and the most job scripts seen alive.
``log_problems`` counts warning and error events (and tracebacks) in the processes' logs.
The machine's busy share before each configuration is recorded: on a shared machine,
``--wait-idle SECONDS`` waits (at most that long) for it to drop below ``--idle-below``.

Settings: PostgreSQL admin URL from ``--postgres-url`` or ``FERROUS_BENCH_POSTGRES_URL``
(either makes ``--database`` default to postgres), else ``FERROUS_TEST_POSTGRES_URL`` or the
local default; Redis and RabbitMQ from ``--redis-url``/``FERROUS_TEST_REDIS_URL`` and
``--rabbitmq-url``/``FERROUS_TEST_RABBITMQ_URL`` (with ``--broker all``, a broker without a
URL is skipped and says so). Redis runs get a channel prefix and RabbitMQ runs an exchange
of their own (deleted afterwards). Agents register with ``FERROUS_AGENT_REGISTRATION_TOKEN``
when set, else with the token each server writes into its data dir. Every process started
here is stopped on exit, Ctrl-C and SIGTERM included; ``--keep`` keeps the logs and work dirs.
Progress goes to stderr, the JSON to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from _processes import Child, Processes, Sampler, child_env, machine_ticks
from dispatch import FINISHED, SCRIPT_STAMP, moment, quantiles
from rest_load import python_load, wrk_load

MAX_PARALLEL = 200  # the pipeline language's cap (GitLab's)
TRIGGER_CLIENTS = 8
FETCH_CLIENTS = 8
BROKER_URL_VARIABLES = {"redis": "FERROUS_TEST_REDIS_URL", "rabbitmq": "FERROUS_TEST_RABBITMQ_URL"}
DEFAULT_POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"


def progress(message: str) -> None:
    sys.stderr.write(f"[concurrency {time.strftime('%H:%M:%S')}] {message}\n")
    sys.stderr.flush()


# --- setup: repositories, databases, brokers ---------------------------------------------


def pipeline_text(jobs: int, commands: list[str], name: str) -> str:
    """One build of ``jobs`` jobs: ``parallel`` copies, in pieces of at most 200."""
    # quoted: a bare ``true`` is YAML's boolean
    script = "  script:\n" + "".join(f"    - {json.dumps(command)}\n" for command in commands)
    parts, left, index = [], jobs, 1
    while left > 0:
        count = min(left, MAX_PARALLEL)
        job = name if jobs <= MAX_PARALLEL else f"{name}-{index}"
        parts.append(f"{job}:\n{script}" + (f"  parallel: {count}\n" if count > 1 else ""))
        left -= count
        index += 1
    return "".join(parts)


def make_repo(folder: Path, pipeline: str) -> Path:
    folder.mkdir(parents=True)
    (folder / ".ferrous.yml").write_text(pipeline)
    (folder / "README").write_text("bench\n")
    identity = ["-c", "user.name=bench", "-c", "user.email=bench@ferrous"]
    for argv in (["init", "-q", "-b", "main"], ["add", "."], ["commit", "-q", "-m", "bench"]):
        subprocess.run(["git", "-C", str(folder), *identity, *argv], check=True)
    return folder


def build_plan(jobs: int, per_build: int) -> list[tuple[int, int]]:
    """[(jobs per build, builds)]: whole builds, and one smaller build for the remainder."""
    per_build = max(1, min(per_build, jobs))
    plan = [(per_build, jobs // per_build)]
    if jobs % per_build:
        plan.append((jobs % per_build, 1))
    return plan


def plain_postgres(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def create_database(admin_url: str) -> str:
    import asyncpg  # noqa: PLC0415  # only the postgres runs need it

    name = f"ferrous_bench_{uuid.uuid4().hex[:10]}"

    async def run() -> None:
        conn = await asyncpg.connect(plain_postgres(admin_url))
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(run())
    base = admin_url.rsplit("/", 1)[0]
    if base.startswith("postgresql://"):
        base = base.replace("postgresql://", "postgresql+asyncpg://", 1)
    return f"{base}/{name}"


def drop_database(admin_url: str, url: str) -> None:
    import asyncpg  # noqa: PLC0415

    name = url.rsplit("/", 1)[1]

    async def run() -> None:
        conn = await asyncpg.connect(plain_postgres(admin_url))
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    try:
        asyncio.run(run())
    except Exception as exc:  # cleanup: say it, go on
        progress(f"could not drop database {name}: {exc!r}")


def with_query(url: str, option: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}{option}"


def delete_exchange(url: str, exchange: str) -> None:
    async def run() -> None:
        import aio_pika  # noqa: PLC0415

        connection = await aio_pika.connect(url)
        try:
            channel = await connection.channel()
            await channel.exchange_delete(exchange)
        finally:
            await connection.close()

    try:
        asyncio.run(run())
    except Exception as exc:
        progress(f"could not delete RabbitMQ exchange {exchange}: {exc!r}")


@dataclass(frozen=True)
class Config:
    database: str
    broker: str
    servers: int
    broker_base_url: str = ""

    @property
    def label(self) -> str:
        return f"{self.database}/{self.broker}/{self.servers} server{'s' * (self.servers > 1)}"


# --- HTTP helpers ------------------------------------------------------------------------


async def trigger_all(urls: list[str], projects: list[str], headers: dict[str, str]) -> list[str]:
    """Trigger one build per entry of ``projects``; clients take turns between the servers."""
    ids: list[str] = []
    left = iter(projects)

    async def one_client(index: int) -> None:
        base = urls[index % len(urls)] + "/api/v1"
        async with httpx.AsyncClient(base_url=base, timeout=300, headers=headers) as http:
            for project in left:
                answer = await http.post(f"/projects/{project}/builds", json={})
                ids.append(answer.raise_for_status().json()["id"])

    clients = max(1, min(TRIGGER_CLIENTS, len(projects)))
    await asyncio.gather(*(one_client(i) for i in range(clients)))
    return ids


async def fetch_all(
    url: str, paths: list[str], headers: dict[str, str], as_json: bool = True
) -> list[Any]:
    """GET every path (8 at a time), in order."""
    out: list[Any] = [None] * len(paths)
    left = iter(enumerate(paths))

    async def one_client() -> None:
        base = url + "/api/v1"
        async with httpx.AsyncClient(base_url=base, timeout=120, headers=headers) as http:
            for index, path in left:
                answer = (await http.get(path)).raise_for_status()
                out[index] = answer.json() if as_json else answer.text

    await asyncio.gather(*(one_client() for _ in range(FETCH_CLIENTS)))
    return out


def statuses(client: httpx.Client, ids: set[str]) -> dict[str, str]:
    """The status of each build in ``ids`` (newest-first pages of the build list)."""
    found: dict[str, str] = {}
    cursor = None
    while len(found) < len(ids):
        params: dict[str, Any] = {"limit": 200}
        if cursor:
            params["cursor"] = cursor
        page = client.get("/builds", params=params).raise_for_status().json()
        for item in page["items"]:
            if item["id"] in ids:
                found[item["id"]] = item["status"]
        cursor = page["next_cursor"]
        if not cursor:
            break
    return found


def wait_finished(client: httpx.Client, ids: list[str], deadline: float) -> dict[str, str]:
    wanted = set(ids)
    while True:
        found = statuses(client, wanted)
        if all(found.get(i) in FINISHED for i in wanted) or time.time() > deadline:
            return found
        time.sleep(1.0)


def claimed_now(client: httpx.Client) -> int:
    agents = client.get("/agents").raise_for_status().json()["items"]
    return sum(int(agent.get("running_jobs") or 0) for agent in agents)


def rest_load(
    url: str,
    connections: int,
    seconds: float,
    scratch: Path,
    loadgen: str,
    headers: dict[str, str],
) -> Any:
    if loadgen == "wrk" or (loadgen == "auto" and shutil.which("wrk")):
        return wrk_load(url, connections, seconds, scratch, headers)
    return asyncio.run(python_load(url, connections, seconds, headers))


def log_problems(children: list[Child]) -> dict[str, int]:
    """Warning and error events in the processes' JSON logs, by kind and event name."""
    counts: Counter[str] = Counter()
    for child in children:
        try:
            text = child.log.read_text(errors="replace")
        except OSError:
            continue
        for line in text.splitlines():
            if not line.startswith("{"):
                if "Traceback" in line:
                    counts[f"{child.kind}:traceback"] += 1
                continue
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("level") in ("warning", "error", "critical"):
                counts[f"{child.kind}:{record['level']}:{record.get('event')}"] += 1
    return dict(counts.most_common())


def status_counts(builds: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "builds": dict(Counter(build["status"] for build in builds)),
        "jobs": dict(Counter(job["status"] for build in builds for job in build["jobs"])),
    }


def seconds_since(start: float, moments: list[float]) -> float | None:
    return round(max(moments) - start, 2) if moments else None


# --- scenarios ---------------------------------------------------------------------------


class Background(threading.Thread):
    """Runs ``work`` in a thread; ``result`` waits for it and raises what it raised."""

    def __init__(self, work: Callable[[], Any]) -> None:
        super().__init__(name="background", daemon=True)
        self._work = work
        self._value: Any = None
        self._error: BaseException | None = None
        self.finished_at = 0.0
        self.start()

    def run(self) -> None:
        try:
            self._value = self._work()
        except BaseException as exc:  # handed to the caller
            self._error = exc
        self.finished_at = time.time()

    def failed(self) -> bool:
        return not self.is_alive() and self._error is not None

    def result(self, timeout: float) -> Any:
        self.join(timeout)
        if self.is_alive():
            raise TimeoutError("still triggering builds")
        if self._error is not None:
            raise self._error
        return self._value


PG_COUNTERS = ("xact_commit", "xact_rollback", "tup_returned", "tup_fetched", "tup_updated")


def pg_counters(admin_url: str, database: str) -> dict[str, int]:
    """The database's activity counters (PostgreSQL flushes them about once a second)."""
    import asyncpg  # noqa: PLC0415

    async def run() -> dict[str, int]:
        conn = await asyncpg.connect(plain_postgres(admin_url))
        try:
            row = await conn.fetchrow(
                f"SELECT {', '.join(PG_COUNTERS)} FROM pg_stat_database WHERE datname = $1",
                database,
            )
        finally:
            await conn.close()
        return {name: int(row[name]) for name in PG_COUNTERS} if row else {}

    return asyncio.run(run())


class Cluster:
    def __init__(
        self,
        servers: list[Child],
        agents: list[Child],
        sampler: Sampler,
        root: Path,
        postgres: tuple[str, str] | None = None,  # (admin URL, database)
    ):
        self.postgres = postgres
        self.servers = servers
        self.agents = agents
        self.sampler = sampler
        self.root = root
        self.urls = [server.url for server in servers]
        self.headers = servers[0].headers  # the admin's: servers share their database
        self.client = httpx.Client(
            base_url=self.urls[0] + "/api/v1", timeout=120, headers=self.headers
        )

    def add_project(self, name: str, pipeline: str) -> str:
        repo = make_repo(self.root / "repos" / name, pipeline)
        body = {"name": name, "repo_url": str(repo), "default_branch": "main"}
        self.client.post("/projects", json=body).raise_for_status()
        return name

    def database_counters(self) -> dict[str, int]:
        return pg_counters(*self.postgres) if self.postgres else {}

    def database_per_job(self, before: dict[str, int], jobs: int) -> dict[str, float]:
        """PostgreSQL transactions and rows per job since ``before`` (``{}`` on SQLite)."""
        after = self.database_counters()
        return {
            name: round((after[name] - before[name]) / max(1, jobs), 1)
            for name in PG_COUNTERS
            if name in before and name in after
        }

    def scripts_now(self) -> int:
        samples = self.sampler.samples
        return int(samples[-1]["scripts"]) if samples else 0


def hold(args: argparse.Namespace, cluster: Cluster) -> dict[str, Any]:
    commands = ["date +%s.%N", f"sleep {args.sleep}"]
    projects: list[str] = []
    for per_build, count in build_plan(args.jobs, args.jobs_per_build):
        name = cluster.add_project(f"hold-{per_build}", pipeline_text(per_build, commands, "hold"))
        projects += [name] * count
    client, sampler = cluster.client, cluster.sampler
    progress(f"hold: triggering {len(projects)} builds, {args.jobs} jobs of sleep {args.sleep}")
    counters = cluster.database_counters()
    t0 = time.time()
    triggering = Background(
        lambda: asyncio.run(trigger_all(cluster.urls, projects, cluster.headers))
    )

    # Ramp: until the server says every job is claimed and /proc shows every script.
    timeline: list[list[float]] = []
    first_claim = all_claimed = all_scripts = None
    deadline = t0 + args.timeout
    while time.time() < deadline:
        if triggering.failed():
            break
        claimed, scripts, now = claimed_now(client), cluster.scripts_now(), time.time()
        timeline.append([round(now - t0, 1), claimed, scripts])
        if claimed and first_claim is None:
            first_claim = now
        if claimed >= args.jobs and all_claimed is None:
            all_claimed = now
        if scripts >= args.jobs:
            all_scripts = now
            break
        if first_claim is not None and now > first_claim + args.sleep:
            break  # the first jobs are ending: they never all ran at once
        time.sleep(0.5)
    ramp_end = time.time()
    time.sleep(1.0)  # PostgreSQL's statistics lag
    ramp_database = cluster.database_per_job(counters, timeline[-1][1] if timeline else 0)
    ids: list[str] = triggering.result(timeout=args.timeout)
    triggered = triggering.finished_at
    progress(
        f"hold: ramp done after {ramp_end - t0:.1f}s "
        f"(claimed {timeline[-1][1]}, scripts {timeline[-1][2]})"
    )

    # Hold: quiet, then REST load, while every job still runs.
    window: dict[str, Any] = {}
    ends_at = (first_claim or ramp_end) + args.sleep
    quiet = min(args.quiet_seconds, max(0.0, ends_at - time.time() - 2))
    time.sleep(quiet)
    quiet_end = time.time()
    window["quiet"] = sampler.window(ramp_end, quiet_end)
    one_build = f"{cluster.urls[0]}/api/v1/builds/{ids[0]}"
    listing = f"{cluster.urls[0]}/api/v1/builds?limit=50"
    each = args.rest_seconds
    if all_scripts is not None:  # stay inside the window where every job runs, if we can
        each = min(each, max(2.0, (ends_at - time.time() - 2) / 2))
    rest_start = time.time()
    load = (args.rest_connections, each, cluster.root, args.loadgen, cluster.headers)
    rest: dict[str, Any] = {
        "seconds_each": round(each, 1),
        "jobs_running_before": claimed_now(client),
        "list_builds": rest_load(listing, *load),
        "get_build": rest_load(one_build, *load),
    }
    rest_end = time.time()
    rest["jobs_running_after"] = claimed_now(client)
    window["under_rest_load"] = sampler.window(rest_start, rest_end)
    progress(f"hold: REST load done; {rest['jobs_running_after']} jobs running")

    found = wait_finished(client, ids, t0 + args.timeout + args.sleep)
    drained = time.time()
    unfinished = sorted(i for i in ids if found.get(i) not in FINISHED)
    window["drain"] = sampler.window(rest_end, drained)
    window["whole"] = sampler.window(t0, drained)
    progress(f"hold: builds finished ({len(unfinished)} unfinished) after {drained - t0:.1f}s")

    builds = asyncio.run(fetch_all(cluster.urls[0], [f"/builds/{i}" for i in ids], cluster.headers))
    jobs = [(build, job) for build in builds for job in build["jobs"]]
    log_paths = [f"/jobs/{job['id']}/log" for _, job in jobs]
    logs = asyncio.run(fetch_all(cluster.urls[0], log_paths, cluster.headers, as_json=False))
    claim, queue_wait, to_script = [], [], []
    started, stamped, finished = [], [], []
    for (build, job), log in zip(jobs, logs, strict=True):
        created = moment(build["created_at"])
        if job["started_at"]:
            started.append(moment(job["started_at"]))
            claim.append(started[-1] - created)
            if job["queued_at"]:
                queue_wait.append(started[-1] - moment(job["queued_at"]))
        stamp = SCRIPT_STAMP.search(log or "")
        if stamp:
            stamped.append(float(stamp[1]))
            to_script.append(stamped[-1] - created)
        if job["finished_at"]:
            finished.append(moment(job["finished_at"]))
    at_once = (
        len(stamped) == args.jobs and bool(finished) and max(stamped) < min(finished, default=0)
    )
    rest_after = {
        "list_builds": rest_load(listing, *load),
        "get_build": rest_load(one_build, *load),
    }
    return {
        "jobs": args.jobs,
        "builds": len(ids),
        "jobs_per_build": args.jobs_per_build,
        "sleep_s": args.sleep,
        "trigger_s": round(triggered - t0, 2),
        "trigger_rate_per_s": round(len(ids) / max(1e-9, triggered - t0), 1),
        "ramp": {
            "all_claimed_s": seconds_since(t0, started),
            "all_scripts_running_s": seconds_since(t0, stamped),
            "all_running_at_once": at_once,
            "max_scripts_seen": max((s["scripts"] for s in sampler.samples), default=0),
            "claimed_seen_by_polling_s": round(all_claimed - t0, 2) if all_claimed else None,
            "scripts_seen_by_proc_s": round(all_scripts - t0, 2) if all_scripts else None,
            "timeline_s_claimed_scripts": timeline[:: max(1, len(timeline) // 40)],
        },
        "claim_latency": quantiles(claim),
        "queue_to_claim": quantiles(queue_wait),
        "trigger_to_script": quantiles(to_script),
        "postgres_per_claimed_job_during_ramp": ramp_database,
        "resources": {
            "ramp": sampler.window(t0, ramp_end),
            **window,
        },
        "rest_holding": rest,
        "rest_after": rest_after,
        "finish": {
            "all_finished_s": seconds_since(t0, finished),
            "drain_s": round(max(finished) - min(finished), 2) if finished else None,
            "statuses": status_counts(builds),
            "unfinished_builds": len(unfinished),
        },
    }


def throughput(args: argparse.Namespace, cluster: Cluster) -> dict[str, Any]:
    per_build = args.throughput_jobs_per_build
    name = cluster.add_project(f"burst-{per_build}", pipeline_text(per_build, ["true"], "burst"))
    projects = [name] * args.throughput_builds
    progress(f"throughput: triggering {len(projects)} builds of {per_build} jobs (true)")
    counters = cluster.database_counters()
    t0 = time.time()
    ids = asyncio.run(trigger_all(cluster.urls, projects, cluster.headers))
    triggered = time.time()
    found = wait_finished(cluster.client, ids, t0 + args.timeout)
    done = time.time()
    unfinished = sum(found.get(i) not in FINISHED for i in ids)
    builds = asyncio.run(fetch_all(cluster.urls[0], [f"/builds/{i}" for i in ids], cluster.headers))
    claim, queue_wait, finished = [], [], []
    build_ends = []
    for build in builds:
        created = moment(build["created_at"])
        ends = []
        for job in build["jobs"]:
            if job["started_at"]:
                claim.append(moment(job["started_at"]) - created)
                if job["queued_at"]:
                    queue_wait.append(moment(job["started_at"]) - moment(job["queued_at"]))
            if job["finished_at"]:
                ends.append(moment(job["finished_at"]))
        finished += ends
        if build["finished_at"]:
            build_ends.append(moment(build["finished_at"]))
    last = max(finished, default=done)
    elapsed = max(1e-9, last - t0)
    jobs = sum(len(build["jobs"]) for build in builds)
    progress(f"throughput: {len(ids)} builds in {elapsed:.1f}s ({unfinished} unfinished)")
    resources = cluster.sampler.window(t0, last)
    database = cluster.database_per_job(counters, len(finished))
    return {
        "builds": len(ids),
        "jobs": jobs,
        "jobs_per_build": per_build,
        "trigger_rate_per_s": round(len(ids) / max(1e-9, triggered - t0), 1),
        "seconds": round(elapsed, 2),
        "builds_per_s": round(len(build_ends) / elapsed, 2),
        "jobs_per_s": round(len(finished) / elapsed, 1),
        "claim_latency": quantiles(claim),
        "queue_to_claim": quantiles(queue_wait),
        "statuses": status_counts(builds),
        "unfinished_builds": unfinished,
        "postgres_per_job": database,
        "resources": resources,
        "cpu_ms_per_job": {
            group: round(figures["cpu_pct"] / 100 * elapsed * 1000 / max(1, len(finished)), 1)
            for group, figures in resources.items()
            if isinstance(figures, dict)
        },
    }


# --- one configuration -------------------------------------------------------------------


@contextmanager
def no_interrupts() -> Iterator[None]:
    """Cleanup must not be cut short by a second Ctrl-C."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def run_config(args: argparse.Namespace, config: Config, scratch: Path) -> dict[str, Any]:
    root = scratch / f"{config.database}-{config.broker}-{config.servers}"
    root.mkdir()
    extra = {"FERROUS_BROKER_URL": "memory://"}
    exchange = ""
    if config.broker == "redis":
        prefix = f"prefix=ferrous-bench-{uuid.uuid4().hex[:8]}:"
        extra["FERROUS_BROKER_URL"] = with_query(config.broker_base_url, prefix)
    elif config.broker == "rabbitmq":
        exchange = f"ferrous-bench-{uuid.uuid4().hex[:8]}"
        extra["FERROUS_BROKER_URL"] = with_query(config.broker_base_url, f"exchange={exchange}")
    database_url = ""
    processes = Processes()
    sampler: Sampler | None = None
    result: dict[str, Any] = {"config": config.label}
    waited = time.monotonic()
    busy = machine_busy()
    while busy > args.idle_below and time.monotonic() - waited < args.wait_idle:
        busy = machine_busy()
    result["machine_busy_pct_before"] = busy
    if args.wait_idle:
        result["waited_for_idle_s"] = round(time.monotonic() - waited, 1)
    try:
        if config.database == "postgres":
            database_url = extra["FERROUS_DATABASE_URL"] = create_database(args.postgres_url)
        env = child_env(extra)
        progress(f"{config.label}: starting {config.servers} server(s)")
        started = time.monotonic()
        servers = [processes.start_server(root / f"server-{i}", env) for i in range(config.servers)]
        server_start = time.monotonic() - started
        tokens = {
            server.url: os.environ.get("FERROUS_AGENT_REGISTRATION_TOKEN")
            or (root / f"server-{i}" / "agent-registration-token").read_text().strip()
            for i, server in enumerate(servers)
        }
        progress(f"{config.label}: starting {args.agents} agents of capacity {args.capacity}")
        started = time.monotonic()
        specs = [
            (f"agent-{i:02d}", servers[i % len(servers)].url, root / "agents" / f"agent-{i:02d}")
            for i in range(args.agents)
        ]
        agents = processes.start_agents(
            specs, token_for=tokens.__getitem__, capacity=args.capacity, env=env
        )
        agents_start = time.monotonic() - started
        redis_port = ""
        if config.broker == "redis":
            redis_port = str(urlsplit(config.broker_base_url).port or 6379)
        database = database_url.rsplit("/", 1)[1] if database_url else ""
        sampler = Sampler(
            servers,
            agents,
            database=database,
            redis_port=redis_port,
            rabbitmq=config.broker == "rabbitmq",
        )
        sampler.start()
        cluster = Cluster(
            servers, agents, sampler, root, (args.postgres_url, database) if database else None
        )
        idle_from = time.time()
        time.sleep(args.quiet_seconds)
        result["startup"] = {
            "servers_s": round(server_start, 2),
            "agents_s": round(agents_start, 2),
            "idle": sampler.window(idle_from, time.time()),
        }
        if args.scenario in ("hold", "all"):
            result["hold"] = hold(args, cluster)
        if args.scenario in ("throughput", "all"):
            result["throughput"] = throughput(args, cluster)
        result["log_problems"] = log_problems(servers + agents)
        result["sampler_cpu_s"] = round(sampler.cost_s, 2)
    except Exception as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"
        result["log_problems"] = log_problems(processes.servers + processes.agents)
        progress(f"{config.label}: failed: {exc!r}")
        if args.keep:
            result["logs"] = str(root)
    finally:
        with no_interrupts():
            progress(f"{config.label}: stopping processes")
            if sampler is not None:
                sampler.stop()
            processes.stop_all()
            if database_url:
                drop_database(args.postgres_url, database_url)
            if exchange:
                delete_exchange(config.broker_base_url, exchange)
    return result


# --- main --------------------------------------------------------------------------------


def machine_busy(seconds: float = 2.0) -> float:
    """How busy the machine is before we start (other work skews every figure)."""

    busy, total = machine_ticks()
    time.sleep(seconds)
    busy2, total2 = machine_ticks()
    return round((busy2 - busy) / max(1, total2 - total) * 100, 1)


def machine_info(loadgen: str) -> dict[str, Any]:
    memory = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            memory = int(line.split()[1]) // 1024
    return {
        "cpus": os.cpu_count(),
        "memory_mb": memory,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "busy_pct_before": machine_busy(),
        "load_average_before": [round(x, 2) for x in os.getloadavg()],
        "loadgen": "wrk"
        if loadgen == "wrk" or (loadgen == "auto" and shutil.which("wrk"))
        else "python-asyncio",
    }


def configurations(args: argparse.Namespace) -> tuple[list[Config], list[dict[str, str]]]:
    names = ["memory", "redis", "rabbitmq"] if args.broker == "all" else args.broker.split(",")
    counts = sorted({int(n) for n in args.servers.split(",")})
    urls = {"memory": "", "redis": args.redis_url, "rabbitmq": args.rabbitmq_url}
    chosen, skipped = [], []
    for broker in names:
        if broker not in urls:
            raise SystemExit(f"unknown broker {broker!r}: memory, redis, rabbitmq or all")
        for servers in counts:
            config = Config(args.database, broker, servers, urls[broker] or "")
            why = ""
            if broker != "memory" and not urls[broker]:
                why = f"no URL: pass --{broker}-url or set {BROKER_URL_VARIABLES[broker]}"
                if args.broker != "all":
                    raise SystemExit(f"--broker {broker}: {why}")
            elif servers > 1 and broker == "memory":
                why = "the memory broker cannot connect two servers"
            elif servers > 1 and args.database == "sqlite":
                why = "two servers need a shared database: --database postgres"
            if why:
                skipped.append({"config": config.label, "skipped": why})
            else:
                chosen.append(config)
    return chosen, skipped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", choices=("hold", "throughput", "all"), default="all")
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--jobs-per-build", type=int, default=MAX_PARALLEL)
    parser.add_argument("--agents", type=int, default=20)
    parser.add_argument("--capacity", type=int, default=50)
    parser.add_argument("--sleep", type=float, default=30.0)
    parser.add_argument("--database", choices=("sqlite", "postgres"), default=None)
    parser.add_argument("--postgres-url", default=None)
    parser.add_argument("--broker", default="memory", help="memory, redis, rabbitmq, a,b or all")
    parser.add_argument("--servers", default="1", help="1, 2 or 1,2")
    parser.add_argument("--redis-url", default=os.environ.get("FERROUS_TEST_REDIS_URL", ""))
    parser.add_argument("--rabbitmq-url", default=os.environ.get("FERROUS_TEST_RABBITMQ_URL", ""))
    parser.add_argument("--throughput-builds", type=int, default=200)
    parser.add_argument("--throughput-jobs-per-build", type=int, default=5)
    parser.add_argument("--rest-connections", type=int, default=10)
    parser.add_argument("--rest-seconds", type=float, default=5.0)
    parser.add_argument("--quiet-seconds", type=float, default=5.0)
    parser.add_argument("--timeout", type=float, default=600.0, help="per wait, seconds")
    parser.add_argument("--loadgen", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument(
        "--wait-idle",
        type=float,
        default=0.0,
        help="on a shared machine: wait up to this many seconds before each configuration "
        "until the machine is less busy than --idle-below percent",
    )
    parser.add_argument("--idle-below", type=float, default=25.0)
    parser.add_argument("--keep", action="store_true", help="keep logs and work dirs")
    args = parser.parse_args()
    given_postgres = args.postgres_url or os.environ.get("FERROUS_BENCH_POSTGRES_URL")
    args.postgres_url = (
        given_postgres or os.environ.get("FERROUS_TEST_POSTGRES_URL") or DEFAULT_POSTGRES
    )
    if args.database is None:
        args.database = "postgres" if given_postgres else "sqlite"

    def terminated(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminated)
    configs, skipped = configurations(args)
    scratch = Path(tempfile.mkdtemp(prefix="ferrous-concurrency-"))
    report: dict[str, Any] = {
        "benchmark": "concurrency",
        "machine": machine_info(args.loadgen),
        "parameters": {
            key: value
            for key, value in vars(args).items()
            if key not in ("keep", "redis_url", "rabbitmq_url", "postgres_url")
        },
        "runs": [],
        "skipped": skipped,
    }
    try:
        for config in configs:
            report["runs"].append(run_config(args, config, scratch))
    except KeyboardInterrupt:
        report["interrupted"] = True
    finally:
        with no_interrupts():
            if args.keep:
                report["scratch"] = str(scratch)
            else:
                shutil.rmtree(scratch, ignore_errors=True)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
