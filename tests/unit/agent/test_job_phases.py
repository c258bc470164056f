"""A job run times its last attempt's phases: prepare, script, after_script (when it has
one) and upload (when it saves caches or artifacts), one after the other."""

from __future__ import annotations

from pathlib import Path

from ferrous.domain.statuses import JobStatus
from ferrous.pipeline_config.plan import Artifacts, Retry
from tests.unit.agent.test_job_runner import Harness


def test_phases_follow_each_other(tmp_path: Path) -> None:
    harness = Harness(tmp_path)
    run, output = harness.start(
        "build",
        script=["echo hi > out.txt"],
        after_script=["echo after"],
        artifacts=Artifacts(paths=("out.txt",)),
    )
    outcome = run.run()
    output.close()
    assert outcome.status == JobStatus.SUCCESS
    assert [p.name for p in run.phases] == ["prepare", "script", "after_script", "upload"]
    for before, after in zip(run.phases, run.phases[1:], strict=False):
        assert before.started_at <= before.finished_at <= after.started_at
    assert all(p.started_at.tzinfo is not None for p in run.phases)


def test_only_the_last_attempt_counts_and_nothing_to_save_is_no_upload(tmp_path: Path) -> None:
    harness = Harness(tmp_path)
    marker = tmp_path / "tried"
    run, output = harness.start(
        "flaky",
        script=[f"test -e {marker} || {{ touch {marker}; exit 1; }}"],
        retry=Retry(max=1),
    )
    outcome = run.run()
    output.close()
    assert (outcome.status, outcome.attempts) == (JobStatus.SUCCESS, 2)
    assert [p.name for p in run.phases] == ["prepare", "script"]
