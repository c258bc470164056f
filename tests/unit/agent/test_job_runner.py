"""One job from workspace to status, with the shell executor and real processes."""

from __future__ import annotations

import io
import itertools
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from ferrous.agent.artifacts import LocalArtifactStore
from ferrous.agent.cache import LocalCacheStore
from ferrous.agent.job_runner import JobOutcome, JobRequest, JobRun, JobSite
from ferrous.agent.logs import Console, JobOutput
from ferrous.agent.shell import ShellExecutor
from ferrous.agent.workspace import SourceTree
from ferrous.domain.statuses import JobStatus
from ferrous.pipeline_config.plan import AllowFailure, Artifacts, Retry
from tests.unit.agent.conftest import job


class Harness:
    def __init__(self, tmp_path: Path) -> None:
        self.source = tmp_path / "source"
        self.source.mkdir()
        (self.source / "input.txt").write_text("from the checkout\n")
        self.builds = tmp_path / "builds"
        ids = itertools.count(100)
        self.site = JobSite(
            source=SourceTree.scan(self.source),
            builds_dir=self.builds,
            artifacts=LocalArtifactStore(tmp_path / "artifacts"),
            caches=LocalCacheStore(tmp_path / "cache"),
            executor=lambda key: ShellExecutor(
                scratch_dir=tmp_path / "scratch", label=key, kill_grace=0.3
            ),
            next_job_id=lambda: next(ids),
        )
        self.screen = io.BytesIO()
        self.console = Console(self.screen, color=False)
        self.logs = tmp_path / "logs"
        self.logs.mkdir()

    def run(self, key: str = "job", **fields: Any) -> tuple[JobOutcome, str]:
        run, output = self.start(key, **fields)
        outcome = run.run()
        output.close()
        run.discard_workspace()
        return outcome, (self.logs / f"{key}.log").read_text()

    def start(
        self, key: str = "job", artifacts_from: tuple[tuple[str, str], ...] = (), **fields: Any
    ) -> tuple[JobRun, JobOutput]:
        request = JobRequest(spec=job(key, **fields), key=key, artifacts_from=artifacts_from)
        output = JobOutput(self.console, key, (self.logs / f"{key}.log").open("wb"))
        return JobRun(request, self.site, output), output


@pytest.fixture
def harness(tmp_path: Path) -> Harness:
    return Harness(tmp_path)


def test_success_sees_the_checkout_and_predefined_variables(harness: Harness) -> None:
    outcome, log = harness.run(
        "build",
        script=["cat input.txt", 'echo "$CI_JOB_NAME $CI_JOB_STAGE $CI_JOB_ID $OUT"'],
        variables={"OUT": "$CI_PROJECT_DIR/out"},
    )
    assert outcome == JobOutcome(JobStatus.SUCCESS, 0, None, False, 1)
    assert "from the checkout" in log
    assert f"build test 100 {harness.builds / 'build'}/out" in log
    assert "Job succeeded" in log
    assert not (harness.builds / "build").exists()


def test_after_script_always_runs_and_cannot_fail_the_job(harness: Harness) -> None:
    outcome, log = harness.run(
        before_script=["echo before"],
        script=["echo script", "exit 4", "echo unreachable"],
        after_script=['echo "after: $CI_JOB_STATUS"', "exit 9"],
    )
    assert outcome.status == JobStatus.FAILED
    assert outcome.exit_code == 4
    assert outcome.failure_reason == "script_failure"
    assert "before\n" in log
    assert "unreachable\n" not in log
    assert "after: failed" in log
    assert "after_script failed (exit code 9), ignored" in log

    outcome, log = harness.run("ok", after_script=['echo "after: $CI_JOB_STATUS"', "false"])
    assert outcome.status == JobStatus.SUCCESS
    assert "after: success" in log


def test_retry_until_success_counts_attempts(harness: Harness, tmp_path: Path) -> None:
    counter = tmp_path / "count"
    script = f'n=$(cat {counter} 2>/dev/null || echo 0); echo $((n+1)) > {counter}; [ "$n" -ge 1 ]'
    outcome, log = harness.run(script=[script], retry=Retry(max=2))
    assert outcome.status == JobStatus.SUCCESS
    assert outcome.attempts == 2
    assert "Retrying (script_failure): attempt 2 of 3" in log


def test_retry_exhausted_and_retry_when(harness: Harness) -> None:
    outcome, _ = harness.run(script=["exit 2"], retry=Retry(max=2))
    assert (outcome.status, outcome.attempts, outcome.exit_code) == (JobStatus.FAILED, 3, 2)
    outcome, _ = harness.run("t", script=["exit 2"], retry=Retry(max=2, when=("api_failure",)))
    assert outcome.attempts == 1
    outcome, _ = harness.run("c", script=["exit 2"], retry=Retry(max=2, exit_codes=(3,)))
    assert outcome.attempts == 1


def test_allow_failure_and_exit_codes(harness: Harness) -> None:
    outcome, _ = harness.run(script=["exit 1"], allow_failure=AllowFailure(allowed=True))
    assert (outcome.status, outcome.failure_allowed) == (JobStatus.FAILED, True)
    hit, _ = harness.run("hit", script=["exit 3"], allow_failure=AllowFailure(exit_codes=(3,)))
    assert hit.failure_allowed
    miss, _ = harness.run("miss", script=["exit 4"], allow_failure=AllowFailure(exit_codes=(3,)))
    assert not miss.failure_allowed


def test_timeout_is_job_execution_timeout(harness: Harness) -> None:
    started = time.monotonic()
    outcome, log = harness.run(script=["sleep 30"], timeout=1, after_script=["echo cleanup"])
    assert time.monotonic() - started < 5
    assert outcome.status == JobStatus.FAILED
    assert outcome.failure_reason == "job_execution_timeout"
    assert outcome.exit_code is None
    assert "execution took longer than 1 seconds" in log
    assert "cleanup" in log


def test_artifacts_follow_when_and_reach_the_next_job(harness: Harness) -> None:
    outcome, log = harness.run(
        "build",
        script=["mkdir -p out", "echo bin > out/bin"],
        artifacts=Artifacts(paths=("out/", "missing/")),
    )
    assert outcome.status == JobStatus.SUCCESS
    assert "WARNING: missing/: no matching files" in log
    outcome, log = harness.run("test", script=["cat out/bin"], artifacts_from=(("build", "build"),))
    assert outcome.status == JobStatus.SUCCESS
    assert "Downloading artifacts for build (1 files)" in log
    assert "bin\n" in log
    harness.run("failing", script=["touch f", "false"], artifacts=Artifacts(paths=("f",)))
    assert not harness.site.artifacts.has("failing")
    harness.run(
        "on-failure",
        script=["touch f", "false"],
        artifacts=Artifacts(paths=("f",), when="on_failure"),
    )
    assert harness.site.artifacts.files("on-failure") == ["f"]


def test_cancel_while_running(harness: Harness) -> None:
    run, _ = harness.start(script=["sleep 30"], after_script=["echo after"])
    threading.Timer(0.3, run.cancel).start()
    started = time.monotonic()
    outcome = run.run()
    assert time.monotonic() - started < 3
    assert outcome.status == JobStatus.CANCELED
    assert outcome.attempts == 1


def test_coverage_is_read_from_the_scripts_output(harness: Harness) -> None:
    outcome, log = harness.run(
        script=["echo 'Code coverage: 50.0'", "echo 'Code coverage: 81.25% of lines'"],
        after_script=["echo done"],
        coverage=r"/Code coverage: \d+(?:\.\d+)?/",
    )
    assert outcome.coverage == 81.25
    assert "Coverage: 81.25%" in log
    outcome, log = harness.run(
        "failing", script=["echo 'TOTAL 3 1 66%'", "false"], coverage=r"/^TOTAL.+?(\d+\%)$/"
    )
    assert (outcome.status, outcome.coverage) == (JobStatus.FAILED, 66.0)
    outcome, log = harness.run("bad", script=["echo 1"], coverage="/(oops/")
    assert (outcome.status, outcome.coverage) == (JobStatus.SUCCESS, None)
    assert "WARNING: coverage regex /(oops/: missing ), unterminated subpattern" in log


def test_reports_are_uploaded_under_the_artifacts_when(harness: Harness) -> None:
    junit = Artifacts(reports={"junit": ("$OUT/*.xml", "none/*.xml")})
    outcome, log = harness.run(
        "unit",
        script=["mkdir -p reports", "echo '<testsuite/>' > reports/a.xml", "false"],
        variables={"OUT": "reports"},
        artifacts=junit,
    )
    assert outcome.status == JobStatus.FAILED
    assert "Uploading junit report" not in log  # on_success by default, like the archive
    outcome, log = harness.run(
        "unit",
        script=["mkdir -p reports", "echo '<testsuite/>' > reports/a.xml"],
        variables={"OUT": "reports"},
        artifacts=junit,
    )
    assert "WARNING: none/*.xml: no matching files" in log
    assert "Saved the junit report (1 files)" in log
    assert harness.site.artifacts.files("unit.junit") == ["reports/a.xml"]
    assert not harness.site.artifacts.has("unit")  # no paths: no archive


def test_a_corrupt_or_hostile_archive_fails_the_job(harness: Harness, tmp_path: Path) -> None:
    harness.run("build", script=["echo x > f"], artifacts=Artifacts(paths=("f",)))
    archive = harness.site.artifacts.archive("build")
    archive.write_bytes(archive.read_bytes()[:20])
    outcome, log = harness.run("test", artifacts_from=(("build", "build"),))
    assert (outcome.status, outcome.failure_reason) == (JobStatus.FAILED, "runner_system_failure")
    assert "ERROR: Job failed (system failure): artifacts of build: " in log
    outcome, log = harness.run("other", artifacts_from=(("nothing", "nothing"),))
    assert outcome.status == JobStatus.SUCCESS
    assert "No artifacts of nothing to download" in log
