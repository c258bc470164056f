"""Builds, their jobs and the jobs' attempts."""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import BaseModel, Field, StringConstraints, TypeAdapter

from ferrous.api.schemas.common import ApiModel, UtcDatetime
from ferrous.application.queries import BuildSummary, BuildView, Page

VariableName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,254}$")]


class BuildTrigger(BaseModel):
    ref: str | None = Field(
        None,
        min_length=1,
        max_length=255,
        description="A branch or tag; default: the project's default branch.",
        examples=["main"],
    )
    sha: str | None = Field(
        None, pattern=r"^[0-9a-fA-F]{7,64}$", description="An exact commit.", examples=[]
    )
    variables: dict[VariableName, str] = Field(
        default_factory=dict,
        description="Variables for this build (as GitLab's pipeline variables).",
        examples=[{"DEPLOY": "false"}],
    )


class BuildOut(ApiModel):
    id: str
    number: int
    project_id: str
    project_name: str
    pipeline_id: str
    pipeline_name: str
    ref: str
    sha: str
    source: str
    status: str
    created_at: UtcDatetime
    started_at: UtcDatetime | None
    finished_at: UtcDatetime | None


class BuildPage(BaseModel):
    items: list[BuildOut]
    next_cursor: str | None = Field(
        description="Pass as `cursor` to get the next page; null on the last page."
    )


_SUMMARIES = TypeAdapter(list[BuildSummary])
_BUILD_FIELDS = {"__all__": set(BuildOut.model_fields)}


def build_page_json(page: Page[BuildSummary]) -> bytes:
    """``BuildPage`` as JSON, straight from the DTOs (the hot listing: no model per row).

    Serialized by pydantic-core from the dataclasses, limited to ``BuildOut``'s fields; the
    query adapters return aware UTC datetimes, which serialize as ``...Z``. A test holds this
    equal to ``BuildPage``.
    """
    items = _SUMMARIES.dump_json(page.items, include=_BUILD_FIELDS)
    return b'{"items":' + items + b',"next_cursor":' + json.dumps(page.next_cursor).encode() + b"}"


class AttemptOut(ApiModel):
    number: int
    status: str
    agent_id: str | None
    exit_code: int | None
    failure_reason: str | None
    started_at: UtcDatetime | None
    finished_at: UtcDatetime | None


class JobOut(ApiModel):
    id: str
    build_id: str
    name: str
    stage: str
    stage_index: int
    status: str
    when: str
    needs: list[str] | None
    tags: list[str]
    allow_failure: bool
    failure_allowed: bool
    attempt: int
    agent_id: str | None
    exit_code: int | None
    failure_reason: str | None
    queued_at: UtcDatetime | None
    started_at: UtcDatetime | None
    finished_at: UtcDatetime | None
    log_size: int
    coverage: float | None = Field(
        None, description="Percent, from the log by the job's `coverage:` regex."
    )


class JobDetail(JobOut):
    attempts: list[AttemptOut]


class ConfigProblemOut(BaseModel):
    """A problem of the pipeline file, where it is and what to do about it."""

    severity: str
    message: str
    file: str = ""
    line: int = 0
    column: int = 0
    path: str = ""
    code: str = ""


class BuildDetail(BuildOut):
    failure_reason: str | None
    problems: list[ConfigProblemOut]
    variables: list[str] = Field(description="Names only: values may be secret.")
    stages: list[str]
    jobs: list[JobOut]
    schedule_id: str | None = Field(None, description="The schedule that made it, if any.")
    coverage: float | None = Field(
        None, description="The mean of its jobs' coverage (those that report one), percent."
    )


def build_detail(view: BuildView) -> BuildDetail:
    fields: dict[str, Any] = {name: getattr(view.summary, name) for name in BuildOut.model_fields}
    return BuildDetail.model_validate(
        {
            **fields,
            "failure_reason": view.failure_reason,
            "problems": view.problems,
            "variables": view.variables,
            "stages": view.stages,
            "jobs": [JobOut.model_validate(job) for job in view.jobs],
            "schedule_id": view.schedule_id,
            "coverage": view.coverage,
        }
    )
