"""The local scheduler: decisions from ``advance``, carried out with real shell jobs."""

from __future__ import annotations

import io
import itertools
import threading
import time
from collections.abc import Callable
from pathlib import Path

from ferrous.agent.artifacts import LocalArtifactStore
from ferrous.agent.cache import LocalCacheStore
from ferrous.agent.executor import Executor
from ferrous.agent.job_runner import JobSite
from ferrous.agent.local.layout import RunLayout
from ferrous.agent.local.pipeline_runner import PipelineRunner, RunOptions
from ferrous.agent.local.records import RunResult
from ferrous.agent.logs import Console
from ferrous.agent.shell import ShellExecutor
from ferrous.agent.workspace import SourceTree
from ferrous.domain.statuses import BuildStatus, JobStatus, When
from ferrous.pipeline_config.plan import AllowFailure, JobSpec, Need
from tests.unit.agent.conftest import job


def make_runner(
    tmp_path: Path,
    jobs: list[JobSpec],
    *,
    parallel: int = 4,
    play: frozenset[str] = frozenset(),
    executor: Callable[[str], Executor] | None = None,
) -> PipelineRunner:
    source = tmp_path / "source"
    source.mkdir(parents=True, exist_ok=True)
    layout = RunLayout.create(tmp_path / "runs")
    site = JobSite(
        source=SourceTree.scan(source),
        builds_dir=layout.builds,
        artifacts=LocalArtifactStore(layout.artifacts),
        caches=LocalCacheStore(tmp_path / "cache"),
        executor=executor
        or (lambda key: ShellExecutor(scratch_dir=layout.scratch, label=key, kill_grace=0.3)),
    )
    return PipelineRunner(
        jobs,
        site=site,
        layout=layout,
        console=Console(io.BytesIO(), color=False),
        options=RunOptions(max_parallel=parallel, play=play),
    )


def statuses(result: RunResult) -> dict[str, str]:
    return {record.name: record.status.value for record in result.jobs}


def test_failure_runs_on_failure_and_always_and_skips_the_rest(tmp_path: Path) -> None:
    jobs = [
        job("build", stage_index=1, script=["exit 1"]),
        job("test", stage_index=2),
        job("notify", stage_index=3, when=When.ON_FAILURE),
        job("cleanup", stage_index=3, when=When.ALWAYS),
    ]
    result = make_runner(tmp_path, jobs).run()
    assert statuses(result) == {
        "build": "failed",
        "test": "skipped",
        "notify": "success",
        "cleanup": "success",
    }
    assert result.status == BuildStatus.FAILED
    assert not result.passed


def test_at_most_max_parallel_jobs_at_once(tmp_path: Path) -> None:
    jobs = [job(f"j{i}", script=["sleep 0.2"]) for i in range(3)]
    result = make_runner(tmp_path, jobs, parallel=1).run()
    spans = sorted((r.started_at, r.finished_at) for r in result.jobs)
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert end is not None
        assert start is not None
        assert end <= start


def test_a_dag_job_starts_before_an_unrelated_slow_job_ends(tmp_path: Path) -> None:
    jobs = [
        job("slow", stage_index=1, script=["sleep 1.5"]),
        job("fast", stage_index=1),
        job("after-fast", stage_index=2, needs=(Need(job="fast"),)),
        job("after-all", stage_index=2),
    ]
    result = make_runner(tmp_path, jobs).run()
    records = {r.name: r for r in result.jobs}
    assert records["after-fast"].started_at < records["slow"].finished_at  # type: ignore[operator]
    assert records["after-all"].started_at >= records["slow"].finished_at  # type: ignore[operator]
    assert result.passed


def test_manual_jobs_wait_unless_played(tmp_path: Path) -> None:
    jobs = [
        job("build", stage_index=1),
        job("deploy", stage_index=2, when=When.MANUAL, allow_failure=AllowFailure(allowed=True)),
    ]
    result = make_runner(tmp_path / "a", jobs).run()
    assert statuses(result) == {"build": "success", "deploy": "manual"}
    assert result.status == BuildStatus.SUCCESS
    played = make_runner(tmp_path / "b", jobs, play=frozenset({"deploy"})).run()
    assert statuses(played) == {"build": "success", "deploy": "success"}


def test_a_blocking_manual_job_blocks_the_pipeline(tmp_path: Path) -> None:
    jobs = [job("gate", stage_index=1, when=When.MANUAL), job("after", stage_index=2)]
    result = make_runner(tmp_path, jobs).run()
    assert statuses(result) == {"gate": "manual", "after": "created"}
    assert result.status == BuildStatus.MANUAL
    assert not result.passed


def test_delayed_jobs_wait_for_their_time(tmp_path: Path) -> None:
    jobs = [job("first", stage_index=1), job("later", stage_index=2, when=When.DELAYED, start_in=1)]
    result = make_runner(tmp_path, jobs).run()
    records = {r.name: r for r in result.jobs}
    gap = records["later"].started_at - records["first"].finished_at  # type: ignore[operator]
    assert gap.total_seconds() >= 0.9
    assert result.passed


def test_cancel_stops_running_jobs_and_cancels_the_rest(tmp_path: Path) -> None:
    jobs = [job("long", stage_index=1, script=["sleep 30"]), job("next", stage_index=2)]
    runner = make_runner(tmp_path, jobs)
    threading.Timer(0.5, runner.cancel).start()
    started = time.monotonic()
    result = runner.run()
    assert time.monotonic() - started < 5
    assert result.canceled
    assert statuses(result) == {"long": "canceled", "next": "canceled"}
    assert result.status == BuildStatus.CANCELED


def test_job_ids_are_unique(tmp_path: Path) -> None:
    jobs = [job(f"j{i}", script=['echo "id=$CI_JOB_ID"']) for i in range(4)]
    result = make_runner(tmp_path, jobs).run()
    ids = {r.log.read_text().split("id=")[2].split()[0] for r in result.jobs}
    assert len(ids) == 4
    assert all(r.status == JobStatus.SUCCESS for r in result.jobs)


def test_a_bug_in_a_job_fails_that_job_not_the_run(tmp_path: Path) -> None:
    def broken_executor(key: str) -> Executor:
        raise RuntimeError("bug")

    jobs = [job("a", stage_index=1), job("b", stage_index=2, when=When.ALWAYS)]
    result = make_runner(tmp_path, jobs, executor=broken_executor).run()
    assert statuses(result) == {"a": "failed", "b": "failed"}
    assert all(r.failure_reason == "runner_system_failure" for r in result.jobs)
    assert "RuntimeError: bug" in result.jobs[0].log.read_text()


def test_one_job_at_a_time_per_resource_group(tmp_path: Path) -> None:
    jobs = [job(f"deploy{i}", script=["sleep 0.2"], resource_group="prod") for i in range(2)]
    jobs.append(job("other", script=["sleep 0.2"]))
    result = make_runner(tmp_path, jobs).run()
    records = {r.name: r for r in result.jobs}
    assert records["deploy0"].finished_at <= records["deploy1"].started_at  # type: ignore[operator]
    assert records["other"].started_at < records["deploy0"].finished_at  # type: ignore[operator]


def test_git_strategy_none_gets_no_source(tmp_path: Path) -> None:
    (tmp_path / "source").mkdir()
    (tmp_path / "source" / "file").write_text("x")
    jobs = [
        job("with", script=["test -f file"]),
        job("without", script=["test ! -e file"], variables={"GIT_STRATEGY": "none"}),
    ]
    result = make_runner(tmp_path, jobs).run()
    assert statuses(result) == {"with": "success", "without": "success"}
