"""``ferrous run`` end to end, one scenario per folder of ``run_scenarios/``.

A scenario is data: a pipeline (``.gitlab-ci.yml`` and any files it uses) and
``expected.json``. Each runs as a real ``python -m ferrous run --json-summary`` process in a
temporary copy of its folder (a fresh git repository unless ``"git": false``), and the summary
is compared with what is expected. Keys of ``expected.json`` (all optional):

- ``args``: extra arguments; ``exit_code``: expected exit status (default: 0 when ``status``
  is success, else 1); ``status``: the pipeline's; ``jobs``: every job's status, exactly;
- per job: ``attempts``, ``exit_codes``, ``failure_reason``, ``allow_failure_hit``;
  ``log_contains`` / ``log_lacks`` (job -> strings); ``artifacts`` (job -> {path: content}),
  ``artifacts_exact`` (jobs whose artifacts are exactly those files);
- ordering: ``started_before_finished`` / ``finished_before_started`` ([a, b] pairs),
  ``gap_at_least`` ([a, b, seconds]: b started that long after a finished);
- ``stderr_contains``; ``no_runs`` (nothing may have run); ``max_seconds``;
  ``interrupt_when`` (send SIGINT once that job's first command shows in its log);
- ``sandbox``: true when the scenario needs bubblewrap (skips without it, unless
  ``FERROUS_REQUIRE_SANDBOX=1``);
- ``runs``: a list of such objects, run one after the other in the same checkout.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from ferrous.archive import entries, extract_file
from tests.unit.agent.test_executor_contract import require_sandbox

SCENARIOS = Path(__file__).parent / "run_scenarios"
NAMES = sorted(p.name for p in SCENARIOS.iterdir() if (p / "expected.json").is_file())

pytestmark = pytest.mark.e2e


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=Ferrous", "-c", "user.email=ci@ferrous", *args],
        check=True,
        capture_output=True,
    )


def _checkout(name: str, tmp_path: Path, use_git: bool) -> Path:
    repo = tmp_path / name
    shutil.copytree(SCENARIOS / name, repo, ignore=shutil.ignore_patterns("expected.json"))
    if use_git:
        _git(repo, "init", "-q", "-b", "main")
        _git(repo, "add", "-A")
        _git(repo, "commit", "-q", "-m", f"scenario {name}")
    return repo


def _run(repo: Path, expected: dict[str, Any], summary: Path) -> tuple[int, str, float]:
    env = {k: v for k, v in os.environ.items() if k != "FORCE_COLOR"}
    env["NO_COLOR"] = "1"
    argv = [sys.executable, "-m", "ferrous", "run", "--json-summary", str(summary)]
    started = time.monotonic()
    proc = subprocess.Popen(
        [*argv, *expected.get("args", [])],
        cwd=repo,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    if "interrupt_when" in expected:
        _wait_for_log(repo, expected["interrupt_when"], proc)
        proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    return proc.returncode, stdout + stderr, time.monotonic() - started


def _wait_for_log(repo: Path, job: str, proc: subprocess.Popen[str]) -> None:
    """Wait until the job runs its script (the log shows its first ``$ command``)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        logs = list((repo / ".ferrous" / "runs").glob(f"*/logs/{job}.log"))
        if logs and "$ " in logs[0].read_text():
            return
        time.sleep(0.05)
    raise AssertionError(f"{job} never started")


def _moment(job: dict[str, Any], field: str) -> datetime:
    value = job[field]
    assert value is not None, f"{job['name']} has no {field}"
    return datetime.fromisoformat(value)


def _check_jobs(expected: dict[str, Any], jobs: dict[str, dict[str, Any]], output: str) -> None:
    if "jobs" in expected:
        assert {n: j["status"] for n, j in jobs.items()} == expected["jobs"], output
    for key, field in (
        ("attempts", "attempts"),
        ("exit_codes", "exit_code"),
        ("failure_reason", "failure_reason"),
        ("allow_failure_hit", "allow_failure_hit"),
    ):
        for name, value in expected.get(key, {}).items():
            assert jobs[name][field] == value, f"{name}.{field}\n{output}"
    for name, texts in expected.get("log_contains", {}).items():
        log = Path(jobs[name]["log"]).read_text()
        for text in texts:
            assert text in log, f"{text!r} not in the log of {name}:\n{log}"
    for name, texts in expected.get("log_lacks", {}).items():
        log = Path(jobs[name]["log"]).read_text()
        for text in texts:
            assert text not in log, f"{text!r} in the log of {name}:\n{log}"


def _check_artifacts(expected: dict[str, Any], jobs: dict[str, dict[str, Any]]) -> None:
    for name, files in expected.get("artifacts", {}).items():
        archive = jobs[name]["artifacts"]  # a .tar.zst, as an agent would upload it
        assert archive is not None, f"{name} has no artifacts"
        for rel, content in files.items():
            with open(archive, "rb") as source:
                text = io.BytesIO()
                extract_file(source, rel, text)
            assert text.getvalue().decode() == content, f"{name}: {rel}"
        if name in expected.get("artifacts_exact", []):
            with open(archive, "rb") as source:
                found = sorted(e.path for e in entries(source) if e.kind == "file")
            assert found == sorted(files), f"{name}: artifacts {found}"


def _check_order(expected: dict[str, Any], jobs: dict[str, dict[str, Any]]) -> None:
    for first, second in expected.get("started_before_finished", []):
        assert _moment(jobs[first], "started_at") < _moment(jobs[second], "finished_at")
    for first, second in expected.get("finished_before_started", []):
        assert _moment(jobs[first], "finished_at") <= _moment(jobs[second], "started_at")
    for first, second, seconds in expected.get("gap_at_least", []):
        gap = _moment(jobs[second], "started_at") - _moment(jobs[first], "finished_at")
        assert gap.total_seconds() >= seconds


def _check_run(repo: Path, expected: dict[str, Any], summary: Path) -> None:
    summary.unlink(missing_ok=True)
    code, output, took = _run(repo, expected, summary)
    status = expected.get("status")
    default_code = 0 if status == "success" else 1
    assert code == expected.get("exit_code", default_code), output
    assert took < expected.get("max_seconds", 60), f"took {took:.1f}s"
    for text in expected.get("stderr_contains", []):
        assert text in output, output
    if expected.get("no_runs"):
        assert not summary.exists()
        assert not (repo / ".ferrous" / "runs").exists() or not any(
            (repo / ".ferrous" / "runs").iterdir()
        )
        return
    if status is None:
        return
    result = json.loads(summary.read_text())
    assert result["status"] == status, output
    jobs = {job["name"]: job for job in result["jobs"]}
    _check_jobs(expected, jobs, output)
    _check_artifacts(expected, jobs)
    _check_order(expected, jobs)


@pytest.mark.parametrize("name", NAMES)
def test_scenario(name: str, tmp_path: Path) -> None:
    expected = json.loads((SCENARIOS / name / "expected.json").read_text())
    if expected.get("sandbox"):
        require_sandbox()
    repo = _checkout(name, tmp_path, expected.get("git", True))
    summary = tmp_path / "summary.json"
    for run in expected.get("runs", [expected]):
        _check_run(repo, run, summary)
