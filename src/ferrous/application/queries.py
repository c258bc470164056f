"""The read side: listings and details as plain DTOs, straight from the store.

Reads never hydrate aggregates: a listing of fifty builds is one query, not fifty loads.
The SQL adapter implements ``Queries``; the API and the web UI call it directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

from ferrous.domain.webhook_delivery import DeliveryRecord

T = TypeVar("T")


@dataclass(frozen=True, slots=True, kw_only=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None  # opaque; pass back to get the next page, None at the end


@dataclass(frozen=True, slots=True, kw_only=True)
class ProjectView:
    id: str
    name: str
    repo_url: str
    default_branch: str
    created_at: datetime
    credentials_kind: str = "none"  # which credentials are set; the secret is never read
    webhook_secret_set: bool = False  # the secret itself is never read
    forge: str = "none"  # where commit statuses go: none, github, gitlab, gitea
    forge_api_url: str | None = None  # as used: derived from repo_url when not given
    forge_repo: str | None = None
    forge_token_set: bool = False  # the token itself is never read
    artifacts_expire_in: str | None = None  # jobs' default `artifacts:expire_in`
    keep_latest_artifacts: bool = True  # each ref's latest successful build outlives expiry


@dataclass(frozen=True, slots=True, kw_only=True)
class PipelineView:
    id: str
    project_id: str
    name: str
    config_path: str | None
    enabled: bool
    created_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class AttemptView:
    number: int
    status: str
    agent_id: str | None
    exit_code: int | None
    failure_reason: str | None
    started_at: datetime | None
    finished_at: datetime | None


@dataclass(frozen=True, slots=True, kw_only=True)
class JobView:
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
    queued_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    log_size: int = 0
    attempts: list[AttemptView] = field(default_factory=list)
    coverage: float | None = None  # percent


@dataclass(frozen=True, slots=True, kw_only=True)
class BuildSummary:
    id: str
    project_id: str
    project_name: str
    pipeline_id: str
    pipeline_name: str
    number: int
    ref: str
    sha: str
    source: str
    status: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


@dataclass(frozen=True, slots=True, kw_only=True)
class BuildView:
    summary: BuildSummary
    failure_reason: str | None
    problems: list[dict[str, Any]]
    variables: list[str]  # names only: values may be secret
    stages: list[str]
    jobs: list[JobView]
    schedule_id: str | None = None  # the schedule that made it

    @property
    def coverage(self) -> float | None:
        """The mean of its jobs' coverage (of those that have one), as GitLab shows it."""
        found = [job.coverage for job in self.jobs if job.coverage is not None]
        return sum(found) / len(found) if found else None


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentView:
    id: str
    name: str
    labels: list[str]
    capacity: int
    platform: dict[str, Any]
    status: str
    embedded: bool
    created_at: datetime
    last_seen_at: datetime
    running_jobs: int


@dataclass(frozen=True, slots=True, kw_only=True)
class RegistrationTokenView:
    """An agent registration token as an admin sees it: never its secret, nor its hash."""

    id: str
    description: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    max_uses: int | None
    uses: int
    last_used_at: datetime | None


@dataclass(frozen=True, slots=True, kw_only=True)
class TriggerTokenView:
    """A project's pipeline trigger token as its maintainers see it: never the secret nor
    its hash."""

    id: str
    project_id: str
    description: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    expires_at: datetime | None


@dataclass(frozen=True, slots=True, kw_only=True)
class SecretVariableView:
    """A secret variable as its maintainers see it: never its value, sealed or not."""

    id: str
    project_id: str | None  # None: an instance variable
    name: str
    protected: bool
    masked: bool
    created_at: datetime
    updated_at: datetime
    created_by: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ScheduleView:
    id: str
    project_id: str
    pipeline_id: str
    pipeline_name: str
    description: str
    cron: str
    timezone: str
    ref: str | None  # None: the project's default branch
    variables: dict[str, str]
    active: bool
    next_run_at: datetime | None
    last_run_at: datetime | None
    last_build_id: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class BuildFilter:
    project_id: str | None = None
    pipeline_id: str | None = None
    status: str | None = None
    ref: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None


class Queries(Protocol):
    async def list_projects(self) -> list[ProjectView]: ...

    async def get_project(self, id_or_name: str) -> ProjectView:
        """Raises NotFound."""
        ...

    async def list_pipelines(self, project_id: str) -> list[PipelineView]: ...

    async def get_pipeline(self, pipeline_id: str) -> PipelineView: ...

    async def list_builds(
        self, filters: BuildFilter, *, limit: int = 50, cursor: str | None = None
    ) -> Page[BuildSummary]:
        """Newest first; keyset pagination on (created_at, id)."""
        ...

    async def get_build(self, build_id: str) -> BuildView:
        """Raises NotFound."""
        ...

    async def get_job(self, job_id: str) -> JobView:
        """With its attempt history. Raises NotFound."""
        ...

    async def list_agents(self) -> list[AgentView]: ...

    async def list_registration_tokens(self) -> list[RegistrationTokenView]:
        """Newest first, revoked and expired ones included (they explain refusals)."""
        ...

    async def list_trigger_tokens(self, project_id: str) -> list[TriggerTokenView]:
        """The project's trigger tokens, newest first, revoked and expired ones included."""
        ...

    async def list_secret_variables(self, project_id: str | None) -> list[SecretVariableView]:
        """The project's own secret variables (None: the instance's), by name."""
        ...

    async def list_schedules(self, project_id: str) -> list[ScheduleView]:
        """Oldest first."""
        ...

    async def get_schedule(self, schedule_id: str) -> ScheduleView:
        """Raises NotFound."""
        ...

    async def list_webhook_deliveries(self, project_id: str, limit: int) -> list[DeliveryRecord]:
        """The project's last ``limit`` deliveries, newest first."""
        ...
