from __future__ import annotations

import pytest

from ferrous.agent.local.selection import (
    UnknownJob,
    artifact_sources,
    resolve_names,
    with_upstream,
)
from ferrous.pipeline_config.plan import Need
from tests.unit.agent.conftest import job

BUILD = job("build", stage="build", stage_index=1)
LINT = job("lint", stage="build", stage_index=1)
UNIT = job("unit", stage="test", stage_index=2, needs=(Need(job="build"),))
E2E = job("e2e", stage="test", stage_index=2)
DEPLOY = job("deploy", stage="deploy", stage_index=3, dependencies=("unit",))
PAR = [job(f"shard {i}/2", base_name="shard", stage_index=2) for i in (1, 2)]
JOBS = (BUILD, LINT, UNIT, E2E, DEPLOY, *PAR)


def names(jobs: object) -> list[str]:
    return [j.name for j in jobs]  # type: ignore[attr-defined]


def test_needs_bring_only_what_is_needed() -> None:
    assert names(with_upstream(JOBS, [UNIT])) == ["build", "unit"]


def test_stage_mode_brings_every_earlier_stage() -> None:
    assert names(with_upstream(JOBS, [E2E])) == ["build", "lint", "e2e"]
    assert names(with_upstream(JOBS, [DEPLOY])) == names(JOBS)


def test_names_match_final_names_or_every_instance() -> None:
    assert names(resolve_names(JOBS, ["shard"], "--job")) == ["shard 1/2", "shard 2/2"]
    assert names(resolve_names(JOBS, ["shard 2/2"], "--job")) == ["shard 2/2"]
    with pytest.raises(UnknownJob, match="--job 'nope': no such job"):
        resolve_names(JOBS, ["nope"], "--job")


def test_artifact_sources_follow_gitlab() -> None:
    assert artifact_sources(UNIT, JOBS) == ("build",)
    assert artifact_sources(E2E, JOBS) == ("build", "lint")
    assert artifact_sources(DEPLOY, JOBS) == ("unit",)
    no_artifacts = job("x", needs=(Need(job="build", artifacts=False), Need(job="lint")))
    assert artifact_sources(no_artifacts, JOBS) == ("lint",)
    assert artifact_sources(job("y", dependencies=()), JOBS) == ()
