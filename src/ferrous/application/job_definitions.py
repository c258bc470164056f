"""From a compiled plan to what a Build stores, and from a stored job to what an agent runs."""

from __future__ import annotations

from typing import Any

from ferrous.domain.build import Build, Job, JobDefinition
from ferrous.domain.repo_credentials import RepoCredentials
from ferrous.pipeline_config.plan import ExecutionPlan, JobSpec
from ferrous.pipeline_config.plan_json import job_spec_to_json


def definition_of(spec: JobSpec) -> JobDefinition:
    return JobDefinition(
        name=spec.name,
        stage=spec.stage,
        stage_index=spec.stage_index,
        when=spec.when,
        needs=spec.need_names,
        allow_failure=spec.allow_failure.allowed,
        allow_failure_exit_codes=spec.allow_failure.exit_codes,
        retry_max=spec.retry.max,
        retry_when=spec.retry.when,
        retry_exit_codes=spec.retry.exit_codes,
        tags=spec.tags,
        timeout=spec.timeout,
        start_in=spec.start_in,
        interruptible=spec.interruptible,
    )


def jobs_of(plan: ExecutionPlan) -> list[tuple[JobDefinition, dict[str, Any]]]:
    return [(definition_of(spec), job_spec_to_json(spec)) for spec in plan.runnable_jobs]


def job_payload(
    build: Build,
    job: Job,
    spec: dict[str, Any],
    repo_url: str,
    server_url: str,
    credentials: RepoCredentials | None = None,
    *,
    max_unpacked_bytes: int | None = None,
) -> dict[str, Any]:
    """Everything an agent needs to run one attempt of a job, in one message.

    ``spec`` is the job's (``BuildRepository.job_spec``): loaded builds come without it.

    ``limits`` carry the server's own cap on what an archive may expand to: the agent
    unpacks downloads under it too, since an archive stored under a higher cap, or replaced
    in the store behind the server's back, was never checked against it.

    ``credentials`` travel in clear inside the claim's answer (over the agent's own
    authenticated connection), since the agent must fetch the commit with them.
    """
    per_run = {
        "CI_JOB_ID": job.id,
        "CI_JOB_NAME": job.name,
        "CI_JOB_STAGE": job.definition.stage,
        "CI_JOB_URL": f"{server_url}/jobs/{job.id}",
        "CI_PIPELINE_ID": build.id,
        "CI_PIPELINE_IID": str(build.number),
        "CI_PIPELINE_URL": f"{server_url}/builds/{build.id}",
        "FERROUS_BUILD_ID": build.id,
        "FERROUS_BUILD_NUMBER": str(build.number),
        "FERROUS_JOB_ID": job.id,
        "FERROUS_JOB_ATTEMPT": str(job.attempt),
    }
    return {
        "job_id": job.id,
        "build_id": build.id,
        "attempt": job.attempt,
        "name": job.name,
        "repo_url": repo_url,
        "credentials": credentials.to_json() if credentials is not None else None,
        "sha": build.sha,
        "ref": build.ref,
        "spec": spec,
        "variables": per_run,
        "timeout": job.definition.timeout,
        "dependencies": _dependency_jobs(build, job, spec),
        "limits": {"max_unpacked_bytes": max_unpacked_bytes},
        "previous_attempt": (
            {"attempt": job.history[-1].number, "failure_reason": job.history[-1].failure_reason}
            if job.history
            else None
        ),
    }


def _dependency_jobs(build: Build, job: Job, spec: dict[str, Any]) -> list[dict[str, str]]:
    """The jobs whose artifacts this job downloads, as GitLab chooses them."""
    if spec.get("dependencies") is not None:
        names = list(spec["dependencies"])
    elif spec.get("needs") is not None:
        names = [need["job"] for need in spec["needs"] if need.get("artifacts", True)]
    else:
        names = [
            other.name
            for other in build.jobs.values()
            if other.definition.stage_index < job.definition.stage_index
        ]
    return [{"name": name, "job_id": build.jobs[name].id} for name in names if name in build.jobs]
