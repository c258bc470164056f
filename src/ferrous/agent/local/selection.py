"""Which jobs a local run includes, and whose artifacts each job receives.

``--job NAME`` runs a job with everything it waits for and nothing else: its ``needs`` (DAG
mode) or every job of the earlier stages (stage mode), transitively. Artifacts follow GitLab:
``dependencies`` when given, else the ``needs`` with ``artifacts: true``, else every job of
the earlier stages; later stages unpack last, so their files win.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ferrous.domain.errors import NotFound
from ferrous.pipeline_config.plan import JobSpec


class UnknownJob(NotFound):
    """There is no job by that name."""


def resolve_names(jobs: Sequence[JobSpec], names: Iterable[str], option: str) -> list[JobSpec]:
    """Jobs named on the command line: by final name, or by base name for all of a
    ``parallel`` job's instances (``--job test`` picks ``test 1/3`` ... ``test 3/3``)."""
    found: list[JobSpec] = []
    for name in names:
        exact = [job for job in jobs if job.name == name]
        matches = exact or [job for job in jobs if job.base_name == name]
        if not matches:
            known = ", ".join(sorted({job.name for job in jobs})) or "none"
            raise UnknownJob(f"{option} {name!r}: no such job (jobs: {known})")
        found.extend(matches)
    return found


def with_upstream(jobs: Sequence[JobSpec], chosen: Iterable[JobSpec]) -> tuple[JobSpec, ...]:
    """The chosen jobs and, transitively, what they wait for, in plan order."""
    by_name = {job.name: job for job in jobs}
    keep: set[str] = set()
    stack = list(chosen)
    while stack:
        job = stack.pop()
        if job.name in keep:
            continue
        keep.add(job.name)
        if job.needs is not None:
            stack.extend(by_name[need.job] for need in job.needs if need.job in by_name)
        else:
            stack.extend(other for other in jobs if other.stage_index < job.stage_index)
    return tuple(job for job in jobs if job.name in keep)


def artifact_sources(job: JobSpec, jobs: Sequence[JobSpec]) -> tuple[str, ...]:
    """Names of the jobs whose artifacts ``job`` receives, in the order to unpack them."""
    if job.dependencies is not None:
        wanted = set(job.dependencies)
    elif job.needs is not None:
        wanted = {need.job for need in job.needs if need.artifacts}
    else:
        wanted = {other.name for other in jobs if other.stage_index < job.stage_index}
    ordered = sorted(
        (other for other in jobs if other.name in wanted), key=lambda other: other.stage_index
    )
    return tuple(other.name for other in ordered)
