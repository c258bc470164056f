"""Benchmark: one big artifact up to a real server and back, on each object store; prints JSON.

    .venv/bin/python bench/storage.py [--store local|s3|both] [--size-mb 200] [--no-text]
                                      [--client agent|httpx]

The issue's promise: a large artifact moves with little memory in the agent and the server
(streamed end to end, sha256 checked both ways). For each store a real ``ferrous serve
--agents 0`` is started (SQLite and a data dir of its own; ``local`` is the default folder
store ``data_dir/objects``, ``s3`` a ``moto_server`` on 127.0.0.1 with a bucket of its own).
This process then plays the agent's server side: it registers with the registration token,
triggers a one-job build tagged for itself and claims the job, so a job is held for uploads.

Per case (``random``: ``--size-mb`` of ``os.urandom``, incompressible; ``text``: as many bytes
of log-like lines, which zstd shrinks a lot; ``--no-text`` skips it) the archive is made by
``ferrous.archive.pack`` in this process (``pack_s``), then a separate client process (this
file with ``--transfer``) runs each phase with the agent's own ``AgentClient`` (streams from
and to a file, sha256 checked; ``--client httpx``: plain httpx streaming, for comparison):

- ``up``: ``PUT /api/v1/agent/jobs/{job}/artifacts/archive`` with ``X-Checksum-Sha256``;
- ``down``: ``GET /api/v1/agent/jobs/{job}/dependencies/{job}/artifacts`` to a file, hashed
  as it arrives and compared with the answer's ``X-Checksum-Sha256`` (a mismatch fails the
  benchmark); ``identical``: the file has the archive's size.

``mb_per_s`` is archive bytes (MiB) over the client's wall time of the request. Memory: the
server's and the client's VmRSS are sampled every 50 ms during the phase; ``*_rss_mb`` gives
the value before the phase (``base``) and the samples' maximum (``peak``); the server's
VmHWM is reset before the phase (``/proc/<pid>/clear_refs``) and read after it (``hwm``: the
true peak, between samples too; null where the kernel refuses the reset); the client also
reports its own VmHWM at exit (``client_hwm_mb``: its interpreter and httpx included, about
40 MB of it before any byte moves). ``moto_rss_mb_peak`` is the S3 stand-in's (it keeps the
objects in memory, so it grows by the object: not a cost of Ferrous).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from _auth import bearer
from _processes import Child, Processes, child_env

MIB = 1024 * 1024
TOKEN = "bench-storage-registration"
LABEL = "bench-storage"
PIPELINE = f"hold:\n  tags: [{LABEL}]\n  script: [echo held]\n"
BUCKET = "ferrous-bench"


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return 0.0


class RssSampler(threading.Thread):
    """The maximum VmRSS of some processes, sampled every ``interval`` seconds."""

    def __init__(self, pids: dict[str, int], interval: float = 0.05) -> None:
        super().__init__(name="rss", daemon=True)
        self.pids = dict(pids)
        self.interval = interval
        self.peak = {name: rss_mb(pid) for name, pid in self.pids.items()}
        self.samples = 0
        self._halt = threading.Event()

    def add(self, name: str, pid: int) -> None:
        self.pids[name] = pid

    def run(self) -> None:
        while not self._halt.wait(self.interval):
            self.samples += 1
            for name, pid in list(self.pids.items()):
                self.peak[name] = max(self.peak.get(name, 0.0), rss_mb(pid))

    def stop(self) -> dict[str, float]:
        self._halt.set()
        self.join(timeout=5)
        return self.peak


# --- the client process: an agent moving one archive ---


async def agent_transfer(phase: str, url: str, token: str, job: str, path: Path, sha: str) -> int:
    """The agent's own client (``AgentClient``: streams from and to files, checks sha256)."""
    from ferrous.agent.remote.client import AgentClient  # noqa: PLC0415

    client = AgentClient(url, token=token, request_timeout=600.0)
    try:
        if phase == "up":
            await client.upload_artifacts(job, "archive", path, sha, name=path.stem)
            return path.stat().st_size
        got = await client.download_artifacts(job, job, path)
        if got is None or got.sha256 != got.expected:
            raise RuntimeError(f"download: {got}")
        return got.size
    finally:
        await client.aclose()


def httpx_transfer(phase: str, url: str, token: str, job: str, path: Path, sha: str) -> int:
    """Plain httpx, streaming from and to a file: a floor for the agent's client."""
    base = f"{url}/api/v1/agent/jobs/{job}"
    headers = bearer(token)
    with httpx.Client(timeout=httpx.Timeout(600.0)) as http:
        if phase == "up":
            headers |= {"X-Checksum-Sha256": sha, "Content-Type": "application/zstd"}
            with path.open("rb") as body:  # a file: httpx streams it with a Content-Length
                answer = http.put(
                    f"{base}/artifacts/archive",
                    params={"name": path.stem},
                    content=body,
                    headers=headers,
                )
            if answer.status_code != 201:
                raise RuntimeError(f"upload: {answer.status_code} {answer.text[:500]}")
            return path.stat().st_size
        digest, size = hashlib.sha256(), 0
        with (
            http.stream("GET", f"{base}/dependencies/{job}/artifacts", headers=headers) as answer,
            path.open("wb") as sink,
        ):
            answer.raise_for_status()
            for block in answer.iter_bytes(MIB):
                digest.update(block)
                sink.write(block)
                size += len(block)
            if answer.headers.get("x-checksum-sha256") != digest.hexdigest():
                raise RuntimeError("download: checksum mismatch")
        return size


def client_main(argv: list[str]) -> None:
    """``--transfer agent|httpx up|down URL TOKEN JOB FILE [SHA256]``: one transfer, one JSON
    line on stdout."""
    impl, phase, url, token, job, path = argv[:6]
    sha = argv[6] if len(argv) > 6 else ""
    if impl == "agent":
        import ferrous.agent.remote.client  # noqa: F401, PLC0415  (imports are not the transfer)
    started = time.perf_counter()
    if impl == "agent":
        size = asyncio.run(agent_transfer(phase, url, token, job, Path(path), sha))
    else:
        size = httpx_transfer(phase, url, token, job, Path(path), sha)
    out = {
        "bytes": size,
        "seconds": time.perf_counter() - started,
        "client_hwm_mb": rss_mb(os.getpid(), "VmHWM"),
    }
    print(json.dumps(out), flush=True)


def reset_hwm(pid: int) -> bool:
    """Reset a process's VmHWM to its current RSS (Linux >= 4.0: ``clear_refs`` 5)."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def run_client(args: list[str], server: Child, moto: int | None) -> dict[str, Any]:
    argv = [sys.executable, str(Path(__file__).resolve()), "--transfer", *args]
    reset = reset_hwm(server.pid)
    before = rss_mb(server.pid)
    sampler = RssSampler({"server": server.pid} | ({"moto": moto} if moto else {}))
    sampler.start()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=child_env())
    sampler.add("client", proc.pid)
    out, _ = proc.communicate(timeout=1800)
    peak = sampler.stop()
    hwm = rss_mb(server.pid, "VmHWM") if reset else None
    if proc.returncode != 0 or not out.strip():
        raise RuntimeError(f"client {args[0]} failed ({proc.returncode}): {out}")
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    seconds = result["seconds"]
    return {
        "bytes": result["bytes"],
        "seconds": round(seconds, 2),
        "mb_per_s": round(result["bytes"] / MIB / seconds, 1),
        "server_rss_mb": {"base": before, "peak": peak["server"], "hwm": hwm},
        "client_rss_mb_peak": peak.get("client", 0.0),
        "client_hwm_mb": result["client_hwm_mb"],
        **({"moto_rss_mb_peak": peak["moto"]} if moto else {}),
    }


# --- the benchmark ---


def make_payload(kind: str, path: Path, size: int) -> None:
    line = b"2024-05-01T12:00:00Z INFO compiling module %06d of the project, all fine\n"
    with path.open("wb") as sink:
        written = n = 0
        while written < size:
            if kind == "random":
                block = os.urandom(min(MIB, size - written))
            else:
                block = b"".join(line % (n + i) for i in range(10_000))[: size - written]
                n += 10_000
            sink.write(block)
            written += len(block)


def start_moto(root: Path) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    moto = Path(sys.executable).parent / "moto_server"
    log = (root / "moto.log").open("wb")
    proc = subprocess.Popen([str(moto), "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=log)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.put(f"{endpoint}/{BUCKET}", timeout=2).raise_for_status()  # CreateBucket
            return proc, endpoint
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError("moto_server did not start")


def hold_a_job(server: Child, root: Path) -> tuple[str, str]:
    """Register as an agent, trigger a one-job build for it, claim the job: (job, token)."""
    repo = root / "repo"
    if not repo.exists():
        repo.mkdir()
        (repo / ".gitlab-ci.yml").write_text(PIPELINE)
        git = ["git", "-C", str(repo), "-c", "user.name=b", "-c", "user.email=b@b"]
        subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
        subprocess.run([*git, "add", "-A"], check=True)
        subprocess.run([*git, "commit", "-q", "-m", "bench"], check=True)
    api = server.url + "/api/v1"
    with httpx.Client(base_url=api, headers=server.headers, timeout=60) as client:
        client.post("/projects", json={"name": "bench", "repo_url": str(repo)}).raise_for_status()
        build = client.post("/projects/bench/builds", json={}).raise_for_status().json()
    body = {"token": TOKEN, "name": "bench-client", "labels": [LABEL]}
    token = httpx.post(api + "/agent/register", json=body, timeout=60).raise_for_status()
    agent_token = str(token.json()["token"])
    with httpx.Client(base_url=api, headers=bearer(agent_token), timeout=120) as agent:
        for _ in range(10):
            claimed = agent.post("/agent/claim")
            if claimed.status_code == 200:
                return str(claimed.json()["job_id"]), agent_token
            if claimed.status_code != 204:
                raise RuntimeError(f"claim: {claimed.status_code} {claimed.text}")
    raise RuntimeError(f"the job was never leased: {build}")


def bench_store(store: str, size: int, cases: list[str], root: Path, impl: str) -> dict[str, Any]:
    from ferrous.archive import pack  # noqa: PLC0415  (the client process does not need it)

    work = root / store
    work.mkdir()
    extra = {"FERROUS_AGENT_REGISTRATION_TOKEN": TOKEN, "FERROUS_LEASE_TIMEOUT": "3600"}
    moto: subprocess.Popen[bytes] | None = None
    processes = Processes()
    try:
        if store == "s3":
            moto, endpoint = start_moto(work)
            extra |= {
                "FERROUS_STORAGE_URL": f"s3://{BUCKET}/bench",
                "FERROUS_S3_ENDPOINT_URL": endpoint,
                "FERROUS_S3_REGION": "us-east-1",
                "FERROUS_S3_ACCESS_KEY_ID": "testing",
                "FERROUS_S3_SECRET_ACCESS_KEY": "testing",
            }
        server = processes.start_server(work / "data", child_env(extra))
        job, token = hold_a_job(server, work)
        out: dict[str, Any] = {
            "server_rss_mb_idle": rss_mb(server.pid),
            "server_hwm_mb_startup": rss_mb(server.pid, "VmHWM"),  # migrations, imports
        }
        for case in cases:
            payload = work / case / "payload.bin"
            payload.parent.mkdir()
            make_payload(case, payload, size)
            started = time.perf_counter()
            packed = pack(payload.parent, ["payload.bin"], work / f"{case}.tar.zst")
            pack_s = time.perf_counter() - started
            payload.unlink()
            common = [server.url, token, job]
            watch = moto.pid if moto is not None else None
            up = run_client([impl, "up", *common, str(packed.path), packed.sha256], server, watch)
            back = work / f"{case}.back.tar.zst"
            down = run_client([impl, "down", *common, str(back)], server, watch)
            down["identical"] = back.stat().st_size == packed.size
            back.unlink()
            packed.path.unlink()
            out[case] = {
                "payload_mb": round(size / MIB, 1),
                "archive_mb": round(packed.size / MIB, 1),
                "pack_s": round(pack_s, 2),
                "pack_mb_per_s": round(size / MIB / pack_s, 1),
                "up": up,
                "down": down,
            }
        return out
    finally:
        processes.stop_all()
        if moto is not None:
            moto.send_signal(signal.SIGTERM)
            moto.wait(timeout=20)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--transfer":
        client_main(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=("local", "s3", "both"), default="both")
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument("--no-text", action="store_true", help="skip the compressible case")
    parser.add_argument(
        "--client",
        choices=("agent", "httpx"),
        default="agent",
        help="the agent's own AgentClient (default) or plain httpx",
    )
    args = parser.parse_args()
    stores = ["local", "s3"] if args.store == "both" else [args.store]
    cases = ["random"] if args.no_text else ["random", "text"]
    root = Path(tempfile.mkdtemp(prefix="ferrous-bench-storage-"))
    try:
        result: dict[str, Any] = {
            "size_mb": args.size_mb,
            "client": args.client,
            "cpus": os.cpu_count(),
        }
        for store in stores:
            result[store] = bench_store(store, args.size_mb * MIB, cases, root, args.client)
        print(json.dumps(result, indent=2))
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
