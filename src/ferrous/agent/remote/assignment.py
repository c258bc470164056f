"""A claimed job, read from the claim's payload (``application.job_definitions.job_payload``)."""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

from ferrous.domain.repo_credentials import RepoCredentials
from ferrous.pipeline_config.plan import JobSpec, Retry
from ferrous.pipeline_config.plan_json import job_spec_from_json


class Assignment(NamedTuple):
    job_id: str
    build_id: str
    attempt: int
    name: str
    repo_url: str
    sha: str
    ref: str
    #: The job as compiled, for one attempt: the server decides retries, so ``retry`` is off.
    spec: JobSpec
    variables: dict[str, str]  # per-run values (CI_JOB_ID, ...), taken verbatim
    dependencies: tuple[tuple[str, str], ...]  # (job name, job id) whose artifacts it needs
    #: Why the previous attempt failed, when this one is a retry; and how many tries in all.
    retry_reason: str | None = None
    max_attempts: int = 1
    #: To fetch the repository; never logged (the value's repr hides the secrets).
    credentials: RepoCredentials | None = None
    #: The server's cap on what one downloaded archive may expand to; None (a server that
    #: sends no ``limits``): no cap.
    max_unpacked_bytes: int | None = None

    @classmethod
    def parse(cls, payload: dict[str, Any]) -> Assignment:
        """Raises KeyError, TypeError, ValueError or InvalidValue for a payload it cannot
        read."""
        spec = job_spec_from_json(payload["spec"])
        previous = payload.get("previous_attempt") or {}
        max_attempts = spec.retry.max + 1
        timeout = payload.get("timeout")
        spec = dataclasses.replace(
            spec,
            retry=Retry(),
            timeout=int(timeout) if timeout is not None else spec.timeout,
        )
        return cls(
            job_id=str(payload["job_id"]),
            build_id=str(payload["build_id"]),
            attempt=int(payload["attempt"]),
            name=str(payload["name"]),
            repo_url=str(payload["repo_url"]),
            sha=str(payload["sha"]),
            ref=str(payload.get("ref") or ""),
            spec=spec,
            variables={str(k): str(v) for k, v in dict(payload.get("variables") or {}).items()},
            dependencies=tuple(
                (str(dep["name"]), str(dep["job_id"])) for dep in payload.get("dependencies") or ()
            ),
            retry_reason=previous.get("failure_reason"),
            max_attempts=max_attempts,
            credentials=(
                RepoCredentials.from_json(dict(payload["credentials"]))
                if payload.get("credentials")
                else None
            ),
            max_unpacked_bytes=_max_unpacked(payload.get("limits")),
        )


def _max_unpacked(limits: Any) -> int | None:
    """A value that is there but unreadable refuses the job: running it without the cap
    would ignore what the server asked."""
    if not limits:
        return None
    value = dict(limits).get("max_unpacked_bytes")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"limits.max_unpacked_bytes is not a positive integer: {value!r}")
    return value
