"""Commands: what someone asks the system to do, in the imperative.

Each is handled by one use case (``application/use_cases/<name>.py``) through the message bus.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ferrous.application.webhooks import WebhookEvent
from ferrous.domain.access import Principal, Role
from ferrous.domain.api_token import ApiTokenKind
from ferrous.domain.forge import ForgeSettings
from ferrous.domain.phases import Phase
from ferrous.domain.repo_credentials import RepoCredentials
from ferrous.domain.schedule import KEEP, Keep


@dataclass(frozen=True, kw_only=True, slots=True)
class Command:
    pass


@dataclass(frozen=True, kw_only=True, slots=True)
class CreateProject(Command):
    name: str
    repo_url: str
    default_branch: str = "main"
    credentials: RepoCredentials | None = None
    webhook_secret: str | None = None
    forge: ForgeSettings | None = None  # where commit statuses go
    artifacts_expire_in: str | None = None  # e.g. "1 week", "never"; None: the server's
    keep_latest_artifacts: bool = True  # each ref's latest successful build outlives expiry


@dataclass(frozen=True, kw_only=True, slots=True)
class UpdateProject(Command):
    """Change what is given; ``credentials`` of kind ``none`` removes them."""

    project_id: str
    repo_url: str | None = None
    default_branch: str | None = None
    credentials: RepoCredentials | None = None
    webhook_secret: str | None = None  # "" removes it (webhooks are then refused)
    forge: ForgeSettings | None = None  # only what is given changes
    artifacts_expire_in: str | None = None  # "" removes it (the server's default applies)
    keep_latest_artifacts: bool | None = None


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
    schedule_id: str | None = None  # set when a schedule (source "schedule") triggers it
    webhook: WebhookEvent | None = None  # set when a forge's webhook triggers it


@dataclass(frozen=True, kw_only=True, slots=True)
class ReceiveWebhook(Command):
    """A forge's delivery, as received: checked, recorded once, turned into builds."""

    project: str  # id or name
    forge: str
    headers: Mapping[str, str]
    body: bytes


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
    """Join an agent; it gets its own agent token.

    ``registration_token`` is an admin-created registration token to spend (one use). None
    means the caller has vouched for the agent already: the API checks the server-wide
    bootstrap token itself (embedded agents, ``FERROUS_AGENT_REGISTRATION_TOKEN``), since
    that secret is server configuration, not stored data.
    """

    name: str
    labels: tuple[str, ...] = ()
    capacity: int = 1
    platform: dict[str, Any] = field(default_factory=dict)
    embedded: bool = False
    registration_token: str | None = field(default=None, repr=False)


@dataclass(frozen=True, kw_only=True, slots=True)
class CreateRegistrationToken(Command):
    """An admin creates an agent registration token (at most one of the two expiries)."""

    description: str = ""
    expires_in: timedelta | None = None
    expires_at: datetime | None = None
    max_uses: int | None = None  # None: unlimited


@dataclass(frozen=True, kw_only=True, slots=True)
class RevokeRegistrationToken(Command):
    token_id: str


@dataclass(frozen=True, kw_only=True, slots=True)
class CreateTriggerToken(Command):
    """A project's maintainer creates a pipeline trigger token (at most one expiry)."""

    project_id: str
    description: str = ""
    expires_in: timedelta | None = None
    expires_at: datetime | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class RevokeTriggerToken(Command):
    project_id: str  # the token must be this project's
    token_id: str


@dataclass(frozen=True, kw_only=True, slots=True)
class CreateNotificationRule(Command):
    """A project's maintainer says who hears of which builds (``domain.notification``)."""

    project_id: str
    name: str
    channel: str
    target: str = field(repr=False)  # a Slack webhook URL is a credential
    on: frozenset[str]
    branches: tuple[str, ...] = ()
    enabled: bool = True
    secret: str | None = field(default=None, repr=False)  # signs webhook bodies


@dataclass(frozen=True, kw_only=True, slots=True)
class UpdateNotificationRule(Command):
    """Change what is given (None: unchanged); ``secret=""`` removes the secret."""

    project_id: str
    rule_id: str
    name: str | None = None
    target: str | None = field(default=None, repr=False)
    on: frozenset[str] | None = None
    branches: tuple[str, ...] | None = None
    enabled: bool | None = None
    secret: str | None = field(default=None, repr=False)


@dataclass(frozen=True, kw_only=True, slots=True)
class DeleteNotificationRule(Command):
    project_id: str
    rule_id: str


@dataclass(frozen=True, kw_only=True, slots=True)
class SendTestNotification(Command):
    """Queue a ``ping`` delivery for the rule, enabled or not."""

    project_id: str
    rule_id: str


@dataclass(frozen=True, kw_only=True, slots=True)
class SetSecretVariable(Command):
    """Create a secret variable, or replace its value and flags (``project_id`` None: an
    instance variable, every project's)."""

    project_id: str | None
    name: str
    value: str = field(repr=False)
    protected: bool = False
    masked: bool = True
    created_by: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class DeleteSecretVariable(Command):
    project_id: str | None
    name: str


@dataclass(frozen=True, kw_only=True, slots=True)
class ResealSecrets(Command):
    """Seal every stored secret again with the secret box's current key (after a rotation),
    those of ``project_ids`` and the instance's, in one transaction."""

    project_ids: tuple[str, ...]


@dataclass(frozen=True, kw_only=True, slots=True)
class RunTrigger(Command):
    """An external system starts a build of a project's default pipeline with its token."""

    project: str  # id or name, as in the URL
    token: str = field(repr=False)
    ref: str | None = None  # default: the project's default branch
    sha: str | None = None
    variables: dict[str, str] = field(default_factory=dict)


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
    coverage: float | None = None  # percent, from the log by the job's `coverage:` regex
    phases: tuple[Phase, ...] = ()  # the attempt's phases as the agent measured them


@dataclass(frozen=True, kw_only=True, slots=True)
class ReapLeases(Command):
    """Disconnect silent agents and settle the jobs they held."""


@dataclass(frozen=True, kw_only=True, slots=True)
class StartDueJobs(Command):
    """Queue `when: delayed` jobs whose start time has come."""


@dataclass(frozen=True, kw_only=True, slots=True)
class CreateSchedule(Command):
    """Run a pipeline by cron (``timezone``: IANA; ``ref`` None: the default branch)."""

    pipeline_id: str
    cron: str
    timezone: str = "UTC"
    ref: str | None = None
    variables: dict[str, str] = field(default_factory=dict)
    description: str = ""
    active: bool = True


@dataclass(frozen=True, kw_only=True, slots=True)
class UpdateSchedule(Command):
    """Change the fields given; ``KEEP`` leaves one as it is (``ref=None``: default branch)."""

    schedule_id: str
    cron: str | Keep = KEEP
    timezone: str | Keep = KEEP
    ref: str | Keep | None = KEEP
    variables: dict[str, str] | Keep = KEEP
    description: str | Keep = KEEP
    active: bool | Keep = KEEP


@dataclass(frozen=True, kw_only=True, slots=True)
class DeleteSchedule(Command):
    schedule_id: str


@dataclass(frozen=True, kw_only=True, slots=True)
class RunSchedule(Command):
    """Run a schedule's pipeline now; its next tick stays where it is."""

    schedule_id: str


@dataclass(frozen=True, kw_only=True, slots=True)
class FireSchedule(Command):
    """Fire a schedule whose tick is due (the firer's command); nothing if it is not due."""

    schedule_id: str


@dataclass(frozen=True, kw_only=True, slots=True)
class CreateUser(Command):
    """An admin adds a person; without a password one is generated (and returned once)."""

    username: str
    role: Role | str = Role.VIEWER
    email: str | None = None
    password: str | None = field(default=None, repr=False)


@dataclass(frozen=True, kw_only=True, slots=True)
class UpdateUser(Command):
    """Change the fields given; ``KEEP`` leaves one as it is (``email=None``: no address)."""

    user_id: str
    role: Role | str | Keep = KEEP
    email: str | Keep | None = KEEP
    active: bool | Keep = KEEP
    password: str | Keep = field(default=KEEP, repr=False)


@dataclass(frozen=True, kw_only=True, slots=True)
class Login(Command):
    """Sign in with a password: an access token and the first refresh token of a session."""

    username: str
    password: str = field(repr=False)


@dataclass(frozen=True, kw_only=True, slots=True)
class RefreshSession(Command):
    """Trade the session's current refresh token for a new access and refresh token."""

    refresh_token: str = field(repr=False)


@dataclass(frozen=True, kw_only=True, slots=True)
class Logout(Command):
    """End one of the user's sessions: its refresh and access tokens stop working."""

    user_id: str
    session_id: str


@dataclass(frozen=True, kw_only=True, slots=True)
class CreateApiToken(Command):
    """A person makes a personal token for themselves, or an admin a service token with
    ``scopes`` (at most one of the two expiries; neither: it never expires)."""

    actor: Principal
    name: str
    kind: ApiTokenKind = ApiTokenKind.PERSONAL
    scopes: frozenset[str] = frozenset()
    expires_in: timedelta | None = None
    expires_at: datetime | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class RevokeApiToken(Command):
    """Revoke one's own token; an admin may revoke anybody's."""

    actor: Principal
    token_id: str
