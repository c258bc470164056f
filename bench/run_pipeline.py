"""Wall time of ``ferrous run``, end to end, as a person would see it; prints JSON.

Two pipelines: 20 trivial jobs (start-up, scheduling and per-job overhead: targets < 0.3 s),
and one job printing 50 MB of log lines (the log path: target < 5 s). Each is run as a real
``ferrous run`` process in a fresh temporary checkout, median of 5 after a warm-up run.

Two floors put the first figure in context: ``python_startup`` (an empty interpreter) and
``cli_floor`` (the same pipeline with ``workflow:rules`` saying never: interpreter, imports,
option parsing, git context and compiling, then exit before any job). The median is the
figure; the minimum is the best guess at the cost on a quiet machine.

Python's start-up depends on compiled bytecode: an installed package has ``.pyc`` files, but
this workspace may set ``PYTHONDONTWRITEBYTECODE``. So the figures are taken with bytecode
cached in a private folder (``PYTHONPYCACHEPREFIX``, nothing written into the venv), as
installed; ``cold_no_bytecode_s`` shows one run that compiles every module from source.

    .venv/bin/python bench/run_pipeline.py [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bytecode import bytecode_env

ROOT = Path(__file__).resolve().parent.parent
FERROUS = [sys.executable, "-m", "ferrous"]

TRIVIAL = "stages: [one, two, three, four]\n" + "".join(
    f"job{i:02d}:\n  stage: {('one', 'two', 'three', 'four')[i % 4]}\n  script: [echo job {i}]\n"
    for i in range(20)
)
NO_PIPELINE = "workflow:\n  rules:\n    - when: never\n" + TRIVIAL
LOG_BYTES = 50_000_000
BIG_LOG = (
    "spam:\n  script:\n"
    # pipefail (as on GitLab) would fail the job when `yes` gets SIGPIPE: hence `|| true`.
    f'    - yes "some log line of moderate length 0123456789" | head -c {LOG_BYTES} || true\n'
)


def _run_once(
    pipeline: str, env: dict[str, str], out_dir: Path, argv: tuple[str, ...] = ()
) -> float:
    with tempfile.TemporaryDirectory(prefix="ferrous-bench-") as tmp:
        checkout = Path(tmp)
        (checkout / ".gitlab-ci.yml").write_text(pipeline)
        command = [*FERROUS, "run", str(checkout), *argv] if pipeline else list(argv)
        with (out_dir / "stdout.log").open("wb") as out:
            start = time.perf_counter()
            done = subprocess.run(command, env=env, stdout=out, stderr=out, check=False)
            took = time.perf_counter() - start
        if done.returncode != 0:
            raise SystemExit(f"{command} failed ({done.returncode}); see {out_dir}/stdout.log")
        return took


def measure(
    pipeline: str,
    runs: int,
    env: dict[str, str],
    out_dir: Path,
    argv: tuple[str, ...] = (),
) -> dict[str, Any]:
    _run_once(pipeline, env, out_dir, argv)  # warm-up: bytecode, page cache
    times = [_run_once(pipeline, env, out_dir, argv) for _ in range(runs)]
    return {
        "median_s": round(statistics.median(times), 3),
        "min_s": round(min(times), 3),
        "runs_s": [round(t, 3) for t in times],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ferrous-bench-pyc-") as pyc:
        out_dir = Path(pyc)
        env = bytecode_env(Path(pyc) / "pycache")
        startup = measure("", args.runs, env, out_dir, (sys.executable, "-c", "pass"))
        floor = measure(NO_PIPELINE, args.runs, env, out_dir)
        trivial = measure(TRIVIAL, args.runs, env, out_dir)
        big_log = measure(BIG_LOG, args.runs, env, out_dir)
        cold = _run_once(TRIVIAL, bytecode_env(None), out_dir)
    result = {
        "cpus": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "python_startup": startup,
        "cli_floor": floor,
        "trivial_20_jobs": {**trivial, "target_s": 0.3},
        "log_50mb": {**big_log, "target_s": 5.0, "bytes": LOG_BYTES},
        "trivial_20_jobs_cold_no_bytecode_s": round(cold, 3),
    }
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
