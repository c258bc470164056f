"""How a pipeline moves forward: which waiting jobs start, which are skipped, and the build status.

These are GitLab's processing rules (``Ci::PipelineProcessing``), kept pure so that the server's
Build aggregate and ``ferrous run`` make exactly the same decisions:

- A job's *upstream* is its ``needs`` when it has them (DAG mode), else every job of the earlier
  stages (stage mode). ``needs: []`` means no upstream at all.
- The upstream's composite status is ``success`` (all passed, skipped or failed with
  ``allow_failure``), ``failed``, ``canceled`` or ``skipped``; while any upstream job is still
  to run, or is a manual job nobody played that blocks, the job waits.
- ``on_success``, ``manual`` and ``delayed`` jobs go ahead on ``success`` (in stage mode also on
  ``skipped``, so a stage of only skipped jobs does not stop the pipeline; in DAG mode a skipped
  need means the job is skipped too); ``on_failure`` on ``failed``; ``always`` on anything.
  Otherwise the job is skipped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ferrous.domain.statuses import BuildStatus, JobStatus, When


@dataclass(frozen=True, slots=True, kw_only=True)
class JobNode:
    """What progression needs to know of a job; built from the execution plan."""

    name: str
    stage_index: int
    when: When
    needs: tuple[str, ...] | None  # None: wait for the earlier stages
    allow_failure: bool  # a manual job with allow_failure does not block what comes after


@dataclass(frozen=True, slots=True)
class JobState:
    status: JobStatus
    failure_allowed: bool = False  # failed, but allow_failure (or its exit code) says fine


_WAIT = "wait"


def _contribution(node: JobNode, state: JobState) -> str:
    status = state.status
    if status == JobStatus.SUCCESS:
        return "success"
    if status == JobStatus.FAILED:
        return "success" if state.failure_allowed else "failed"
    if status in (JobStatus.CANCELED, JobStatus.SKIPPED):
        return status.value
    if status == JobStatus.MANUAL and node.allow_failure:
        return "ignored"
    return _WAIT


def upstream_status(
    node: JobNode, nodes: Mapping[str, JobNode], states: Mapping[str, JobState]
) -> str:
    """Composite status of what ``node`` waits for: success/failed/canceled/skipped or wait."""
    dag = node.needs is not None
    if node.needs is not None:
        upstream = [nodes[name] for name in node.needs if name in nodes]
    else:
        upstream = [n for n in nodes.values() if n.stage_index < node.stage_index]
    keys: set[str] = set()
    for other in upstream:
        if other.when == When.NEVER:
            continue
        key = _contribution(other, states[other.name])
        if key == "ignored" and dag:
            key = _WAIT  # a need on an unplayed manual job waits for it to be played
        keys.add(key)
    if _WAIT in keys:
        return _WAIT
    if "failed" in keys:
        return "failed"
    if "canceled" in keys:
        return "canceled"
    if dag and "skipped" in keys:
        return "skipped"
    if keys and keys <= {"skipped", "ignored"}:
        return "skipped"
    return "success"


def _decide(node: JobNode, composite: str) -> JobStatus:
    dag = node.needs is not None
    if node.when == When.ALWAYS:
        go = True
    elif node.when == When.ON_FAILURE:
        go = composite == "failed"
    else:
        go = composite == "success" or (not dag and composite == "skipped")
    if not go:
        return JobStatus.SKIPPED
    if node.when == When.MANUAL:
        return JobStatus.MANUAL
    if node.when == When.DELAYED:
        return JobStatus.SCHEDULED
    return JobStatus.PENDING


def advance(nodes: Mapping[str, JobNode], states: Mapping[str, JobState]) -> dict[str, JobStatus]:
    """Decide every ``created`` job whose upstream has settled.

    Returns only the changes. Skips cascade, so the result is computed to a fixed point: a job
    skipped here may settle the upstream of another in the same call.
    """
    current = dict(states)
    changes: dict[str, JobStatus] = {}
    progressed = True
    while progressed:
        progressed = False
        for node in nodes.values():
            if node.when == When.NEVER or current[node.name].status != JobStatus.CREATED:
                continue
            composite = upstream_status(node, nodes, current)
            if composite == _WAIT:
                continue
            new = _decide(node, composite)
            changes[node.name] = new
            current[node.name] = JobState(new)
            progressed = progressed or new == JobStatus.SKIPPED
    return changes


def build_status(nodes: Iterable[JobNode], states: Mapping[str, JobState]) -> BuildStatus:
    """The build's status, derived from its jobs as GitLab derives a pipeline's."""
    keys: set[str] = set()
    for node in nodes:
        if node.when == When.NEVER:
            continue
        state = states[node.name]
        status = state.status
        if status == JobStatus.FAILED and state.failure_allowed:
            keys.add("success")
        elif status == JobStatus.MANUAL and node.allow_failure:
            keys.add("skipped")
        else:
            keys.add(status.value)
    if not keys:
        return BuildStatus.SKIPPED
    if keys & {"running", "pending"}:
        return BuildStatus.RUNNING
    if "manual" in keys:
        return BuildStatus.MANUAL
    if keys & {"created", "waiting", "scheduled"}:
        return BuildStatus.RUNNING if keys & {"success", "failed"} else BuildStatus.PENDING
    if "failed" in keys:
        return BuildStatus.FAILED
    if "canceled" in keys:
        return BuildStatus.CANCELED
    if keys == {"skipped"}:
        return BuildStatus.SKIPPED
    return BuildStatus.SUCCESS
