"""Commands: what someone asks the system to do, in the imperative.

Each is handled by one use case (``application/use_cases/<name>.py``) through the message bus.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, kw_only=True, slots=True)
class Command:
    pass


@dataclass(frozen=True, kw_only=True, slots=True)
class CreateProject(Command):
    name: str
    repo_url: str
    default_branch: str = "main"


@dataclass(frozen=True, kw_only=True, slots=True)
class CreatePipeline(Command):
    project_id: str
    name: str = "default"
    config_path: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class EnablePipeline(Command):
    pipeline_id: str


@dataclass(frozen=True, kw_only=True, slots=True)
class DisablePipeline(Command):
    pipeline_id: str


@dataclass(frozen=True, kw_only=True, slots=True)
class TriggerBuild(Command):
    """Run a pipeline at a ref (branch, tag) or an exact sha."""

    pipeline_id: str
    ref: str | None = None  # default: the project's default branch
    sha: str | None = None
    source: str = "api"
    variables: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True, slots=True)
class CancelBuild(Command):
    build_id: str


@dataclass(frozen=True, kw_only=True, slots=True)
class RetryBuild(Command):
    build_id: str


@dataclass(frozen=True, kw_only=True, slots=True)
class RetryJob(Command):
    job_id: str


@dataclass(frozen=True, kw_only=True, slots=True)
class PlayJob(Command):
    job_id: str


@dataclass(frozen=True, kw_only=True, slots=True)
class RegisterAgent(Command):
    name: str
    labels: tuple[str, ...] = ()
    capacity: int = 1
    platform: dict[str, Any] = field(default_factory=dict)
    embedded: bool = False


@dataclass(frozen=True, kw_only=True, slots=True)
class ClaimJob(Command):
    agent_id: str


@dataclass(frozen=True, kw_only=True, slots=True)
class Heartbeat(Command):
    agent_id: str
    running_job_ids: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True, slots=True)
class AppendLog(Command):
    agent_id: str
    job_id: str
    offset: int
    data: bytes


@dataclass(frozen=True, kw_only=True, slots=True)
class CompleteJob(Command):
    agent_id: str
    job_id: str
    attempt: int
    exit_code: int | None
    failure_reason: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class ReapLeases(Command):
    """Disconnect silent agents and settle the jobs they held."""


@dataclass(frozen=True, kw_only=True, slots=True)
class StartDueJobs(Command):
    """Queue `when: delayed` jobs whose start time has come."""
