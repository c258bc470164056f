"""How a pipeline moves forward: which waiting jobs start, which are skipped, and the build status.

These are GitLab's processing rules, kept pure so that the server's Build aggregate and
``ferrous run`` make exactly the same decisions. Each rule names the GitLab code it follows:

- A job's *upstream* is its ``needs`` when it has them (DAG mode; ``needs: []`` means no
  upstream at all), else every job of the earlier stages (stage mode)
  (``AtomicProcessingService#status_of_previous_jobs``). ``when: never`` jobs do not exist.
- Each upstream job counts by its status, except that a failed or canceled job that may fail
  counts as *success with warnings*, and a manual job that may fail (a non-blocking one, the
  default for ``when: manual``) is *ignored* (``Gitlab::Ci::Status::Composite``).
- The composite of those is a finished status (success, failed, canceled, skipped) or not yet;
  a job waits until it is finished. In DAG mode a skipped or ignored need makes the composite
  ``skipped`` at once, even while other needs still run: a job that needs an unplayed optional
  manual job is skipped, not kept waiting (``Composite#status``, gitlab-org/gitlab#31264).
- ``on_success``, ``manual`` and ``delayed`` jobs go ahead on ``success``, and in stage mode
  also on ``skipped``; ``on_failure`` on ``failed``; ``always`` on success, failed or
  skipped, so never after a canceled upstream. Otherwise the job is skipped
  (``Ci::ProcessBuildService#valid_statuses_for_build``).
- Playing a manual job or retrying one puts the skipped jobs after it back to ``created``
  (``Ci::ResetSkippedJobsService``), and ``advance`` decides them again.
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
    #: GitLab's static ``allow_failure``: true for ``allow_failure: true`` and, unless set, for
    #: ``when: manual``; false for ``allow_failure: {exit_codes: ...}``. A manual job with it
    #: does not block what comes after; a canceled job with it counts as a success.
    allow_failure: bool


@dataclass(frozen=True, slots=True)
class JobState:
    status: JobStatus
    #: The failure is allowed: the job has ``allow_failure: true``, or it failed with one of its
    #: ``allow_failure: exit_codes``. Read for failed and canceled jobs only.
    failure_allowed: bool = False


_WAIT = "wait"
_WARNED = "success_with_warnings"  # failed or canceled, but allowed to fail
_IGNORED = "ignored"  # a manual job nobody has to play
_FINISHED = frozenset({"success", "failed", "canceled", "skipped"})

# Gitlab::Ci::Status::Composite#status, in its order: first "only these", then "any of these".
_ONLY_OF: tuple[tuple[str, frozenset[str]], ...] = (
    ("skipped", frozenset({"skipped", _IGNORED})),
    ("success", frozenset({"success", "skipped", _WARNED, _IGNORED})),
    ("created", frozenset({"created", _WARNED, _IGNORED})),
    ("canceled", frozenset({"canceled", "success", "skipped", _WARNED, _IGNORED})),
    ("pending", frozenset({"pending", "created", "skipped", _WARNED, _IGNORED})),
)
_ANY_OF: tuple[tuple[str, frozenset[str]], ...] = (
    ("running", frozenset({"running", "pending"})),
    ("waiting", frozenset({"waiting"})),
    ("manual", frozenset({"manual"})),
    ("scheduled", frozenset({"scheduled"})),
    ("running", frozenset({"created"})),
)

# Ci::ProcessBuildService#valid_statuses_for_build: what the upstream must be for a job to go.
_GO_ON: dict[When, frozenset[str]] = {
    When.ON_SUCCESS: frozenset({"success", "skipped"}),
    When.MANUAL: frozenset({"success", "skipped"}),
    When.DELAYED: frozenset({"success", "skipped"}),
    When.ON_FAILURE: frozenset({"failed"}),
    When.ALWAYS: frozenset({"success", "failed", "skipped"}),
}


def _key(node: JobNode, state: JobState) -> str:
    status = state.status
    if status == JobStatus.FAILED and state.failure_allowed:
        return _WARNED
    if status == JobStatus.CANCELED and (state.failure_allowed or node.allow_failure):
        return _WARNED
    if status == JobStatus.MANUAL and node.allow_failure:
        return _IGNORED
    return status.value


def _composite(keys: set[str], *, dag: bool) -> str | None:
    if not keys:
        return None
    if dag and keys & {"skipped", _IGNORED}:
        return "skipped"  # a need that will not run skips the job (DAG mode only)
    for status, allowed in _ONLY_OF:
        if keys <= allowed:
            return status
    for status, wanted in _ANY_OF:
        if keys & wanted:
            return status
    return "failed"


def _keys(nodes: Iterable[JobNode], states: Mapping[str, JobState]) -> set[str]:
    return {_key(node, states[node.name]) for node in nodes if node.when != When.NEVER}


def upstream_status(
    node: JobNode, nodes: Mapping[str, JobNode], states: Mapping[str, JobState]
) -> str:
    """Composite status of what ``node`` waits for: success/failed/canceled/skipped or wait."""
    if node.needs is not None:
        upstream = [nodes[name] for name in node.needs if name in nodes]
    else:
        upstream = [n for n in nodes.values() if n.stage_index < node.stage_index]
    status = _composite(_keys(upstream, states), dag=node.needs is not None) or "success"
    return status if status in _FINISHED else _WAIT


def _decide(node: JobNode, composite: str) -> JobStatus:
    go_on = _GO_ON.get(node.when, frozenset())
    if node.needs is not None and node.when != When.ALWAYS:
        go_on -= {"skipped"}  # in DAG mode a skipped need skips the job
    if composite not in go_on:
        return JobStatus.SKIPPED
    if node.when == When.MANUAL:
        return JobStatus.MANUAL
    if node.when == When.DELAYED:
        return JobStatus.SCHEDULED
    return JobStatus.PENDING


def advance(nodes: Mapping[str, JobNode], states: Mapping[str, JobState]) -> dict[str, JobStatus]:
    """Decide every ``created`` job whose upstream has settled.

    Returns only the changes. A decision can settle the upstream of another job (a skip, or a
    non-blocking manual job), so the result is computed to a fixed point; it does not depend
    on the order of ``nodes``.
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
            progressed = True
    return changes


def reset_skipped(
    nodes: Mapping[str, JobNode], states: Mapping[str, JobState], restarted: Iterable[str]
) -> dict[str, JobStatus]:
    """The skipped jobs to put back to ``created`` after ``restarted`` jobs were played or retried.

    As GitLab's ``Ci::ResetSkippedJobsService``: every skipped job of a later stage than the
    earliest restarted job, and every skipped job that needs one of them, directly or through
    other jobs. Call ``advance`` next: it decides them again.
    """
    names = {name for name in restarted if name in nodes}
    if not names:
        return {}
    first_stage = min(nodes[name].stage_index for name in names)
    reached = set(names)
    grew = True
    while grew:
        grew = False
        for node in nodes.values():
            if node.name not in reached and node.needs and reached.intersection(node.needs):
                reached.add(node.name)
                grew = True
    return {
        node.name: JobStatus.CREATED
        for node in nodes.values()
        if node.when != When.NEVER
        and states[node.name].status == JobStatus.SKIPPED
        and (node.stage_index > first_stage or node.name in reached)
    }


_STARTED = frozenset(
    {BuildStatus.RUNNING, BuildStatus.SUCCESS, BuildStatus.FAILED, BuildStatus.CANCELED}
)


def build_status(
    nodes: Iterable[JobNode],
    states: Mapping[str, JobState],
    *,
    previous: BuildStatus | None = None,
) -> BuildStatus:
    """The build's status, derived from its jobs as GitLab derives a pipeline's.

    ``previous`` is the build's status before this change. As in GitLab's pipeline state
    machine, a build that has run goes back to ``running``, not ``pending``, when jobs are
    queued again (a retry, a played job, a next job after an allowed failure), and jobs that
    are all still ``created`` leave the status as it was (``Ci::Pipeline#set_status``).
    """
    status = _composite(_keys(nodes, states), dag=False)
    if status is None:
        return BuildStatus.SKIPPED  # no job at all (GitLab would not have created the pipeline)
    if status == "created":
        return previous or BuildStatus.CREATED
    if status == "pending" and previous in _STARTED:
        return BuildStatus.RUNNING
    return BuildStatus(status)
