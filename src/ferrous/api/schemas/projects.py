"""Projects and their pipelines."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AliasChoices, BaseModel, Field, field_validator

from ferrous.api.schemas.common import ApiModel, UtcDatetime
from ferrous.api.schemas.forge import ForgeApiUrlIn, ForgeIn, ForgeRepoIn, ForgeTokenIn
from ferrous.domain.forge import ForgeKind
from ferrous.domain.repo_credentials import CredentialKind, RepoCredentials

#: As ``ferrous.domain.project.check_name`` checks it; here too, so errors name the field.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"


class HttpsTokenIn(BaseModel):
    """A token sent as the password of HTTP basic auth (GitHub, GitLab, Gitea tokens)."""

    kind: Literal["https_token"]
    token: str = Field(min_length=1, max_length=4000)
    username: str | None = Field(
        None,
        max_length=200,
        description="Default `x-access-token` for github.com, else `oauth2`.",
    )


class SshKeyIn(BaseModel):
    """A deploy key: the private key's text (OpenSSH or PEM)."""

    kind: Literal["ssh_key"]
    private_key: str = Field(min_length=1, max_length=20_000)
    known_hosts: str | None = Field(
        None,
        max_length=20_000,
        description="known_hosts lines of the server; without them the host key is "
        "accepted on first use, at every fetch.",
    )


class NoCredentialsIn(BaseModel):
    kind: Literal["none"]


CredentialsIn = Annotated[
    HttpsTokenIn | SshKeyIn | NoCredentialsIn,
    Field(
        discriminator="kind",
        description="Write-only: answers only tell `{kind, set}`.",
    ),
]


def credentials_of(
    body: HttpsTokenIn | SshKeyIn | NoCredentialsIn | None,
) -> RepoCredentials | None:
    """The command's value; raises InvalidValue (a 422) for one that cannot be used."""
    if body is None:
        return None
    return RepoCredentials.from_json(body.model_dump(exclude_none=True))


WEBHOOK_SECRET = (
    "Write-only: the secret the forge signs deliveries with (GitLab: its token), 16 to 1000 "
    "characters. Without one, webhook deliveries are refused."
)
EXPIRE_IN = (
    "How long artifacts of jobs without `artifacts:expire_in` are kept, in GitLab's words: "
    "`30 days`, `1 week`, `3 hrs 20 min`, `never`. Unset: the server's "
    "(`FERROUS_ARTIFACTS_EXPIRE_IN`)."
)
KEEP_LATEST = (
    "Keep the artifacts of each ref's latest successful build (per pipeline) past their "
    "expiry, until a newer build of that ref succeeds (GitLab's *Keep artifacts from most "
    "recent successful jobs*)."
)


class ProjectCreate(BaseModel):
    name: str = Field(pattern=NAME_PATTERN, examples=["ferrous"])
    repo_url: str = Field(
        min_length=1, max_length=2000, examples=["https://git.example.com/ci/ferrous.git"]
    )
    default_branch: str = Field("main", min_length=1, max_length=255, examples=["main"])
    credentials: CredentialsIn | None = None
    webhook_secret: str | None = Field(None, max_length=1000, description=WEBHOOK_SECRET)
    forge: ForgeIn = None
    forge_api_url: ForgeApiUrlIn = None
    forge_repo: ForgeRepoIn = None
    forge_token: ForgeTokenIn = None
    artifacts_expire_in: str | None = Field(
        None, min_length=1, max_length=64, description=EXPIRE_IN, examples=["1 week"]
    )
    keep_latest_artifacts: bool = Field(True, description=KEEP_LATEST)


class ProjectUpdate(BaseModel):
    """Only the fields given change; `credentials: {"kind": "none"}` removes them."""

    repo_url: str | None = Field(None, min_length=1, max_length=2000)
    default_branch: str | None = Field(None, min_length=1, max_length=255)
    credentials: CredentialsIn | None = None
    webhook_secret: str | None = Field(
        None, max_length=1000, description=WEBHOOK_SECRET + ' `""` removes it.'
    )
    forge: ForgeIn = None
    forge_api_url: ForgeApiUrlIn = None
    forge_repo: ForgeRepoIn = None
    forge_token: ForgeTokenIn = None
    artifacts_expire_in: str | None = Field(
        None, max_length=64, description=EXPIRE_IN + ' `""` removes it.'
    )
    keep_latest_artifacts: bool | None = Field(None, description=KEEP_LATEST)


class CredentialsState(BaseModel):
    kind: CredentialKind
    set: bool


class ProjectOut(ApiModel):
    id: str
    name: str
    repo_url: str
    default_branch: str
    created_at: UtcDatetime
    credentials: CredentialsState = Field(
        validation_alias=AliasChoices("credentials", "credentials_kind"),
        description="Which credentials the project has; never the secret itself.",
    )
    webhook_secret_set: bool = Field(
        False, description="Whether webhook deliveries can be checked (the secret is set)."
    )
    forge: ForgeKind = Field(ForgeKind.NONE, description="Where commit statuses go.")
    forge_api_url: str | None = Field(None, description="The forge API used (maybe derived).")
    forge_repo: str | None = Field(None, description="The repository on the forge.")
    forge_token_set: bool = Field(False, description="Whether a status token is set.")
    artifacts_expire_in: str | None = Field(
        None, description="Jobs' default `artifacts:expire_in`; None: the server's."
    )
    keep_latest_artifacts: bool = Field(True, description=KEEP_LATEST)

    @field_validator("credentials", mode="before")
    @classmethod
    def _from_kind(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"kind": value, "set": value != CredentialKind.NONE}
        return value


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
