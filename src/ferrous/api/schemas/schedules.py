"""Schedules: a pipeline run by cron, as the API creates, changes and shows them."""

from __future__ import annotations

from pydantic import BaseModel, Field

from ferrous.api.schemas.builds import VariableName
from ferrous.api.schemas.common import ApiModel, UtcDatetime
from ferrous.domain.schedule import MAX_DESCRIPTION, MAX_REF, MAX_VARIABLES

CRON = Field(
    min_length=1,
    max_length=255,
    description="Five fields: minute hour day-of-month month day-of-week, read in `timezone` "
    "(`0 3 * * *`: every day at 03:00), or `@hourly`, `@daily`, `@weekly`, `@monthly`, "
    "`@yearly`.",
    examples=["0 3 * * *"],
)
TIMEZONE_HELP = "An IANA time zone; daylight saving is followed."
REF_HELP = "The branch or tag to build; null: the project's default branch when it runs."
VARIABLES_HELP = "Variables for its builds (as GitLab's pipeline schedule variables)."


class ScheduleCreate(BaseModel):
    cron: str = CRON
    timezone: str = Field("UTC", min_length=1, max_length=64, description=TIMEZONE_HELP)
    pipeline: str = Field(
        "default",
        min_length=1,
        max_length=100,
        description="The project's pipeline to run: its name or id.",
    )
    ref: str | None = Field(None, min_length=1, max_length=MAX_REF, description=REF_HELP)
    variables: dict[VariableName, str] = Field(
        default_factory=dict, max_length=MAX_VARIABLES, description=VARIABLES_HELP
    )
    description: str = Field("", max_length=MAX_DESCRIPTION, examples=["nightly"])
    active: bool = Field(True, description="Inactive schedules do not run by cron.")


class ScheduleUpdate(BaseModel):
    """Only the fields given change; `variables` replaces them all."""

    cron: str | None = Field(None, min_length=1, max_length=255, description=CRON.description)
    timezone: str | None = Field(None, min_length=1, max_length=64, description=TIMEZONE_HELP)
    ref: str | None = Field(None, min_length=1, max_length=MAX_REF, description=REF_HELP)
    variables: dict[VariableName, str] | None = Field(
        None, max_length=MAX_VARIABLES, description=VARIABLES_HELP
    )
    description: str | None = Field(None, max_length=MAX_DESCRIPTION)
    active: bool | None = None


class ScheduleOut(ApiModel):
    id: str
    project_id: str
    pipeline_id: str
    pipeline_name: str
    description: str
    cron: str
    timezone: str
    ref: str | None = Field(description=REF_HELP)
    variables: dict[str, str]
    active: bool
    next_run_at: UtcDatetime | None = Field(description="The next tick (UTC); null: inactive.")
    last_run_at: UtcDatetime | None
    last_build_id: str | None
    created_at: UtcDatetime


class ScheduleList(BaseModel):
    items: list[ScheduleOut]
