"""Projects (a repository) and their pipelines (a pipeline file run on triggers)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from ferrous.domain.errors import ConfigInvalid
from ferrous.domain.events import (
    Event,
    PipelineCreated,
    PipelineDisabled,
    PipelineEnabled,
    ProjectCreated,
)
from ferrous.domain.forge import ForgeLink
from ferrous.domain.ids import new_id
from ferrous.domain.repo_credentials import SealedCredentials

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def check_name(name: str, what: str) -> str:
    if not _NAME.match(name):
        raise ConfigInvalid(
            f"{what} name {name!r} must be 1-100 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


@dataclass(slots=True, kw_only=True)
class Project:
    id: str
    name: str
    repo_url: str  # https, ssh (``ssh://`` or ``user@host:path``), git, file URL or a path
    default_branch: str
    created_at: datetime
    credentials: SealedCredentials | None = None  # None: the repository needs none
    webhook_secret: str | None = None  # sealed by the secret box; None: webhooks refused
    forge: ForgeLink | None = None  # where commit statuses go; None: nowhere
    #: `artifacts:expire_in` of its jobs that give none ("never" keeps); None: the server's
    artifacts_expire_in: str | None = None
    #: the artifacts of each ref's latest successful build are kept past their expiry
    keep_latest_artifacts: bool = True
    events: list[Event] = field(default_factory=list)

    @classmethod
    def create(
        cls,
        *,
        name: str,
        repo_url: str,
        default_branch: str,
        now: datetime,
        credentials: SealedCredentials | None = None,
    ) -> Project:
        project = cls(
            id=new_id(),
            name=check_name(name, "project"),
            repo_url=repo_url,
            default_branch=default_branch,
            created_at=now,
            credentials=credentials,
        )
        project.events.append(ProjectCreated(project_id=project.id, name=project.name))
        return project


@dataclass(slots=True, kw_only=True)
class Pipeline:
    id: str
    project_id: str
    name: str
    config_path: str | None  # None: .ferrous.yml, else .gitlab-ci.yml
    enabled: bool
    created_at: datetime
    events: list[Event] = field(default_factory=list)

    @classmethod
    def create(
        cls, *, project_id: str, name: str, config_path: str | None, now: datetime
    ) -> Pipeline:
        pipeline = cls(
            id=new_id(),
            project_id=project_id,
            name=check_name(name, "pipeline"),
            config_path=config_path,
            enabled=True,
            created_at=now,
        )
        pipeline.events.append(
            PipelineCreated(pipeline_id=pipeline.id, project_id=project_id, name=name)
        )
        return pipeline

    def enable(self) -> None:
        if not self.enabled:
            self.enabled = True
            self.events.append(PipelineEnabled(pipeline_id=self.id))

    def disable(self) -> None:
        if self.enabled:
            self.enabled = False
            self.events.append(PipelineDisabled(pipeline_id=self.id))
