"""Projects and their pipelines."""

from __future__ import annotations

from pydantic import BaseModel, Field

from ferrous.api.schemas.common import ApiModel, UtcDatetime

#: As ``ferrous.domain.project.check_name`` checks it; here too, so errors name the field.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"


class ProjectCreate(BaseModel):
    name: str = Field(pattern=NAME_PATTERN, examples=["ferrous"])
    repo_url: str = Field(
        min_length=1, max_length=2000, examples=["https://git.example.com/ci/ferrous.git"]
    )
    default_branch: str = Field("main", min_length=1, max_length=255, examples=["main"])


class ProjectOut(ApiModel):
    id: str
    name: str
    repo_url: str
    default_branch: str
    created_at: UtcDatetime


class ProjectDetail(ProjectOut):
    default_pipeline_id: str | None = Field(
        description="The pipeline named `default`, which `POST /projects/{id}/builds` runs."
    )


class ProjectList(BaseModel):
    items: list[ProjectOut]


class PipelineCreate(BaseModel):
    name: str = Field(pattern=NAME_PATTERN, examples=["nightly"])
    config_path: str | None = Field(
        None,
        min_length=1,
        max_length=1000,
        description="The pipeline file in the repository; default `.ferrous.yml`, "
        "else `.gitlab-ci.yml`.",
        examples=[".gitlab-ci.yml"],
    )


class PipelineOut(ApiModel):
    id: str
    project_id: str
    name: str
    config_path: str | None
    enabled: bool
    created_at: UtcDatetime


class PipelineList(BaseModel):
    items: list[PipelineOut]
