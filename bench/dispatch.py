"""Benchmark: a real ``ferrous serve`` dispatching builds to its embedded agents; prints JSON.

    .venv/bin/python bench/dispatch.py [--database sqlite|postgres] [--builds 300] [--agents N]

What it measures (timestamps are the server's and this process's clocks: one machine):

1. ``rss_mb``: the server's VmRSS (embedded agents included: they are in-process) right after
   start, and after the load.
2. ``idle``: one single-job build at a time, each waited for. ``trigger_to_claim`` runs from
   just before the trigger request to the job's ``started_at``, which the server stamps when
   an agent *claims* the job; ``trigger_to_script`` to the moment the job's script runs (it
   prints ``date +%s.%N``, read back from the job log): clone, checkout and shell start-up
   included, the latency a person actually sees.
3. ``throughput``: ``--builds`` single-job builds triggered by ``--clients`` concurrent
   clients; builds/s from the first trigger to the last job's ``finished_at``, and the same
   two latencies under that load (from the server's ``created_at``).
4. ``rest``: ``GET /api/v1/builds?limit=50`` from 20 keep-alive connections for ``--seconds``;
   by ``wrk`` when installed (``loadgen`` says which), else a raw asyncio HTTP/1.1 client.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from _auth import admin_token, bearer, with_admin
from rest_load import python_load, wrk_load

LISTENING = re.compile(r"listening on (http://\S+)")
SCRIPT_STAMP = re.compile(r"^(\d{10}\.\d{6,9})\s*$", re.MULTILINE)
PIPELINE = "job:\n  script:\n    - date +%s.%N\n"
FINISHED = ("success", "failed", "canceled", "skipped", "manual")
ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def moment(text: str) -> float:
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def quantiles(values: list[float]) -> dict[str, float]:
    """p50/p95/p99 in milliseconds (``values`` in seconds)."""
    ms = sorted(v * 1000 for v in values)
    if not ms:
        return {}

    def at(q: float) -> float:
        return round(ms[min(len(ms) - 1, round(q * (len(ms) - 1)))], 1)

    return {"p50_ms": at(0.5), "p95_ms": at(0.95), "p99_ms": at(0.99), "max_ms": round(ms[-1], 1)}


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def make_repo(root: Path) -> Path:
    repo = root / "repo"
    repo.mkdir()
    (repo / ".ferrous.yml").write_text(PIPELINE)
    (repo / "README").write_text("bench\n")
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "b",
        "GIT_AUTHOR_EMAIL": "b@x",
        "GIT_COMMITTER_NAME": "b",
    }
    env["GIT_COMMITTER_EMAIL"] = "b@x"
    for argv in (["init", "-q", "-b", "main"], ["add", "."], ["commit", "-q", "-m", "bench"]):
        subprocess.run(["git", "-C", str(repo), *argv], check=True, env=env)
    return repo


def postgres_url(action: str, name: str) -> str:
    import asyncpg  # noqa: PLC0415  # only the postgres run needs it

    async def run() -> None:
        conn = await asyncpg.connect(ADMIN_URL)
        try:
            if action == "create":
                await conn.execute(f'CREATE DATABASE "{name}"')
            else:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(run())
    return f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"


def start_server(
    data_dir: Path, agents: int, env: dict[str, str]
) -> tuple[subprocess.Popen[str], str]:
    argv = [sys.executable, "-m", "ferrous", "serve", "--port", "0"]
    argv += ["--data-dir", str(data_dir), "--agents", str(agents)]
    with (data_dir / "server.log").open("a") as errors:
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=errors, text=True)
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        found = LISTENING.search(line)
        if found:
            return proc, found[1]
        if not line and proc.poll() is not None:
            break
    raise SystemExit(f"server did not start; see {data_dir / 'server.log'}")


def only_job(build: dict[str, Any]) -> dict[str, Any]:
    [job] = build["jobs"]
    return job


def script_moment(client: httpx.Client, job_id: str) -> float | None:
    found = SCRIPT_STAMP.search(client.get(f"/jobs/{job_id}/log").text)
    return float(found[1]) if found else None


def wait_finished(client: httpx.Client, build_id: str, poll: float) -> dict[str, Any]:
    while True:
        build = client.get(f"/builds/{build_id}").raise_for_status().json()
        if build["status"] in FINISHED:
            return build
        time.sleep(poll)


def idle_latency(client: httpx.Client, project: str, count: int) -> dict[str, Any]:
    to_claim, to_script, statuses = [], [], []
    for _ in range(count):
        time.sleep(0.05)  # idle: nothing else in flight
        sent = time.time()
        build = client.post(f"/projects/{project}/builds", json={}).raise_for_status().json()
        build = wait_finished(client, build["id"], 0.005)
        job = only_job(build)
        statuses.append(build["status"])
        to_claim.append(moment(job["started_at"]) - sent)
        ran = script_moment(client, job["id"])
        if ran is not None:
            to_script.append(ran - sent)
    return {
        "builds": count,
        "failed": sum(s != "success" for s in statuses),
        "trigger_to_claim": quantiles(to_claim),
        "trigger_to_script": quantiles(to_script),
    }


async def trigger_all(
    url: str, project: str, count: int, clients: int, headers: dict[str, str]
) -> list[str]:
    ids: list[str] = []
    left = iter(range(count))

    async def one_client() -> None:
        async with httpx.AsyncClient(base_url=url, timeout=60, headers=headers) as http:
            for _ in left:
                answer = await http.post(f"/projects/{project}/builds", json={})
                ids.append(answer.raise_for_status().json()["id"])

    await asyncio.gather(*(one_client() for _ in range(clients)))
    return ids


def throughput(
    client: httpx.Client, url: str, project: str, count: int, clients: int
) -> dict[str, Any]:
    first = time.time()
    ids = asyncio.run(trigger_all(url, project, count, clients, dict(client.headers)))
    triggered = time.time()
    for build_id in ids:  # in trigger order, roughly the order they finish in
        wait_finished(client, build_id, 0.05)
    builds = [client.get(f"/builds/{build_id}").json() for build_id in ids]
    jobs = [only_job(b) for b in builds]
    last = max(moment(j["finished_at"]) for j in jobs)
    to_claim = [
        moment(j["started_at"]) - moment(b["created_at"]) for b, j in zip(builds, jobs, strict=True)
    ]
    to_script = []
    for build, job in zip(builds, jobs, strict=True):
        ran = script_moment(client, job["id"])
        if ran is not None:
            to_script.append(ran - moment(build["created_at"]))
    return {
        "builds": count,
        "clients": clients,
        "failed": sum(b["status"] != "success" for b in builds),
        "trigger_rate_per_s": round(count / (triggered - first), 1),
        "builds_per_s": round(count / (last - first), 2),
        "seconds": round(last - first, 2),
        "trigger_to_claim": quantiles(to_claim),
        "trigger_to_script": quantiles(to_script),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--builds", type=int, default=300)
    parser.add_argument("--agents", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--idle-builds", type=int, default=30)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--loadgen", choices=("auto", "wrk", "python"), default="auto")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="ferrous-bench-"))
    env = with_admin({**os.environ})
    env.pop("FERROUS_URL", None)
    db_name = f"ferrous_bench_{uuid.uuid4().hex[:10]}"
    if args.database == "postgres":
        env["FERROUS_DATABASE_URL"] = postgres_url("create", db_name)
    proc = None
    try:
        repo = make_repo(root)
        data = root / "data"
        data.mkdir()
        proc, url = start_server(data, args.agents, env)
        time.sleep(1.0)  # agents registered and long-polling
        result: dict[str, Any] = {
            "database": args.database,
            "agents": args.agents,
            "cpus": os.cpu_count(),
            "rss_mb": {"idle": rss_mb(proc.pid)},
        }
        headers = bearer(admin_token(url, env["FERROUS_ADMIN_PASSWORD"]))
        with httpx.Client(base_url=url + "/api/v1", timeout=60, headers=headers) as client:
            body = {"name": "bench", "repo_url": str(repo), "default_branch": "main"}
            client.post("/projects", json=body).raise_for_status()
            wait_finished(client, client.post("/projects/bench/builds", json={}).json()["id"], 0.01)
            result["idle"] = idle_latency(client, "bench", args.idle_builds)
            result["throughput"] = throughput(
                client, url + "/api/v1", "bench", args.builds, args.clients
            )
        target = url + "/api/v1/builds?limit=50"
        use_wrk = args.loadgen == "wrk" or (args.loadgen == "auto" and shutil.which("wrk"))
        if use_wrk:
            result["rest"] = wrk_load(target, 20, args.seconds, root, headers)
        else:
            result["rest"] = asyncio.run(python_load(target, 20, args.seconds, headers))
        result["rss_mb"]["after_load"] = rss_mb(proc.pid)
        print(json.dumps(result, indent=2))
    finally:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        if args.database == "postgres":
            postgres_url("drop", db_name)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
