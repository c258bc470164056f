"""Agents as people see them, and the agent protocol's messages."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from ferrous.api.schemas.common import ApiModel, UtcDatetime
from ferrous.domain.phases import MAX_PHASES


class AgentOut(ApiModel):
    id: str
    name: str
    labels: list[str]
    capacity: int
    platform: dict[str, Any]
    status: str
    embedded: bool
    created_at: UtcDatetime
    last_seen_at: UtcDatetime
    running_jobs: int


class AgentList(BaseModel):
    items: list[AgentOut]


class AgentRegistration(BaseModel):
    token: str = Field(
        description="A registration token from `ferrous agent-token create` (one use is "
        "counted), or the server's bootstrap token.",
        min_length=1,
    )
    name: str = Field(min_length=1, max_length=200, examples=["builder-01"])
    labels: list[str] = Field(default_factory=list, examples=[["linux", "docker"]])
    capacity: int = Field(1, ge=1, le=1000, description="Jobs it runs at once.")
    platform: dict[str, Any] = Field(
        default_factory=dict, examples=[{"os": "linux", "arch": "x86_64", "version": "0.1.0"}]
    )


class AgentCredentials(BaseModel):
    agent_id: str
    token: str = Field(description="Shown once: send it as `Authorization: Bearer <token>`.")


class JobLimits(BaseModel):
    """The server's caps, which the agent applies to what it receives too."""

    model_config = {"extra": "allow"}

    max_unpacked_bytes: int | None = Field(
        None,
        description="What one downloaded artifact or cache archive may expand to "
        "(`FERROUS_ARTIFACT_MAX_UNPACKED_BYTES`); past it the artifact fails the job and the "
        "cache restore stops with a warning. null: no cap.",
        examples=[53687091200],
    )


class ClaimedJob(BaseModel):
    """Everything an agent needs to run one attempt of a job."""

    model_config = {"extra": "allow"}

    job_id: str
    build_id: str
    attempt: int
    name: str
    repo_url: str
    credentials: dict[str, str] | None = Field(
        None, description="The repository's credentials, for the agent holding the lease."
    )
    sha: str
    ref: str
    spec: dict[str, Any]
    variables: dict[str, str] = Field(
        description="Per-run values and the job's secret variables, taken verbatim."
    )
    mask: list[str] = Field(
        default_factory=list,
        description="Values to replace by `[MASKED]` in the job's log before it is sent.",
    )
    timeout: int | None
    dependencies: list[dict[str, str]]
    limits: JobLimits


class HeartbeatIn(BaseModel):
    running: list[str] = Field(default_factory=list, description="Ids of the jobs it runs.")


class HeartbeatOut(BaseModel):
    cancel: list[str] = Field(description="Ids of the jobs it must stop.")


class LogAppended(BaseModel):
    size: int = Field(description="The log's length after the chunk, in bytes.")


class JobPhase(BaseModel):
    """One phase of the attempt, timed by the agent (shown as a span of the build's trace)."""

    name: Literal["prepare", "script", "after_script", "upload"]
    started_at: UtcDatetime
    finished_at: UtcDatetime

    @model_validator(mode="after")
    def _in_order(self) -> JobPhase:
        if self.finished_at < self.started_at:
            raise ValueError("a phase cannot finish before it starts")
        return self


class JobResult(BaseModel):
    attempt: int = Field(ge=1)
    exit_code: int | None = Field(description="null when the script could not run.")
    failure_reason: str | None = Field(
        None, max_length=200, examples=["script_failure", "runner_system_failure"]
    )
    coverage: float | None = Field(
        None,
        ge=0,
        le=100,
        allow_inf_nan=False,
        description="The job's coverage in percent, from its log by its `coverage:` regex.",
        examples=[87.5],
    )
    phases: list[JobPhase] = Field(
        default_factory=list,
        max_length=MAX_PHASES,
        description="How long the attempt's phases took (prepare, script, after_script, "
        "upload), for the build's trace.",
    )


class JobResultAccepted(BaseModel):
    job_id: str
    status: str = Field(description="The job's status after the report (it may be retried).")
