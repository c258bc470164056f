"""The variables a job's shell sees: the plan's, plus the values only known when it runs.

The plan carries everything the compiler could know (pipeline, job, trigger variables).
Per-run values (the job id, its folder, its node index) are added here, before expansion, so
that ``OUT: $CI_PROJECT_DIR/out`` means this job's folder. They are taken verbatim: a job name
with a ``$`` in it is not a reference.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from ferrous.pipeline_config.context import ref_slug
from ferrous.pipeline_config.plan import JobSpec
from ferrous.pipeline_config.variables import expand_mapping


def run_values(
    spec: JobSpec,
    *,
    job_id: int,
    project_dir: Path,
    builds_dir: Path,
    timeout: float,
    manual: bool = False,
) -> dict[str, str]:
    """GitLab's predefined per-job variables, with ``FERROUS_*`` aliases for the main ones."""
    values = {
        "CI_JOB_ID": str(job_id),
        "CI_JOB_NAME": spec.name,
        "CI_JOB_NAME_SLUG": ref_slug(spec.name),
        "CI_JOB_STAGE": spec.stage,
        "CI_JOB_STARTED_AT": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "CI_JOB_TIMEOUT": str(int(timeout)),
        "CI_PROJECT_DIR": str(project_dir),
        "CI_BUILDS_DIR": str(builds_dir),
        "CI_NODE_TOTAL": str(spec.node_total or 1),
        "FERROUS_JOB_ID": str(job_id),
        "FERROUS_JOB_NAME": spec.name,
    }
    if spec.node_index is not None:
        values["CI_NODE_INDEX"] = str(spec.node_index)
    if manual:
        values["CI_JOB_MANUAL"] = "true"
    return values


def job_variables(spec: JobSpec, per_run: dict[str, str]) -> dict[str, str]:
    """Every variable of the job, expanded as GitLab expands them for the runner."""
    merged = {**spec.variables, **per_run}
    return expand_mapping(merged, raw=spec.raw_variables | per_run.keys())
