"""The execution plan: what a pipeline compiles to, for whoever runs it.

It is backend-neutral and self-contained: ``ferrous run``, the server and the agents consume
it unchanged, without going back to YAML. Jobs appear under their final names (after
``parallel``/``matrix`` expansion), with needs resolved to concrete job names and variables
merged, so a runner makes no language decisions of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ferrous.domain.auto_cancel import AutoCancel
from ferrous.domain.progression import JobNode
from ferrous.domain.statuses import When


@dataclass(frozen=True, slots=True, kw_only=True)
class Need:
    job: str  # concrete job name
    artifacts: bool = True
    optional: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class AllowFailure:
    """``allow_failure``: never, always, or only for some exit codes."""

    allowed: bool = False
    exit_codes: tuple[int, ...] = ()

    def permits(self, exit_code: int | None) -> bool:
        if self.exit_codes:
            return exit_code in self.exit_codes
        return self.allowed

    def to_json(self) -> bool | dict[str, list[int]]:
        if self.exit_codes:
            return {"exit_codes": list(self.exit_codes)}
        return self.allowed


#: ``retry:when`` values GitLab documents.
RETRY_WHEN_VALUES = frozenset(
    {
        "always",
        "unknown_failure",
        "script_failure",
        "api_failure",
        "stuck_or_timeout_failure",
        "runner_system_failure",
        "runner_unsupported",
        "stale_schedule",
        "job_execution_timeout",
        "archived_failure",
        "unmet_prerequisites",
        "scheduler_failure",
        "data_integrity_failure",
        "runner_interrupted",
    }
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Retry:
    max: int = 0
    when: tuple[str, ...] = ("always",)
    exit_codes: tuple[int, ...] = ()

    def should_retry(self, attempt: int, reason: str, exit_code: int | None) -> bool:
        """Whether attempt number ``attempt`` (1-based) failing for ``reason`` earns another."""
        if attempt > self.max:
            return False
        if self.exit_codes and exit_code not in self.exit_codes:
            return False
        return "always" in self.when or reason in self.when


@dataclass(frozen=True, slots=True, kw_only=True)
class Artifacts:
    paths: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    untracked: bool = False
    when: str = "on_success"  # on_success | on_failure | always
    expire_in: str | None = None
    name: str | None = None
    expose_as: str | None = None
    public: bool = True
    reports: dict[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class Cache:
    key: str = "default"  # as written: the runner expands it and hashes `key:files`
    key_files: tuple[str, ...] = ()
    key_prefix: str | None = None
    paths: tuple[str, ...] = ()
    untracked: bool = False
    policy: str = "pull-push"  # pull | push | pull-push
    when: str = "on_success"  # on_success | on_failure | always
    fallback_keys: tuple[str, ...] = ()
    unprotect: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Image:
    name: str
    entrypoint: tuple[str, ...] | None = None
    pull_policy: tuple[str, ...] = ()
    docker: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class Service:
    name: str
    alias: str | None = None
    entrypoint: tuple[str, ...] | None = None
    command: tuple[str, ...] | None = None
    variables: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class Environment:
    name: str
    url: str | None = None
    action: str = "start"
    on_stop: str | None = None
    auto_stop_in: str | None = None
    deployment_tier: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class JobSpec:
    name: str  # final name, e.g. "test: [3.11, linux]" or "build 1/3"
    base_name: str  # the job's key in the file
    stage: str
    stage_index: int
    when: When
    start_in: int | None = None  # seconds, for `when: delayed`
    allow_failure: AllowFailure = AllowFailure()
    needs: tuple[Need, ...] | None = None  # None: wait for every job of the earlier stages
    #: Jobs whose artifacts are downloaded before the script; None means all of the upstream.
    dependencies: tuple[str, ...] | None = None
    before_script: tuple[str, ...] = ()
    script: tuple[str, ...] = ()
    after_script: tuple[str, ...] = ()
    #: Everything the job's shell sees, except per-run values (CI_JOB_ID, CI_PROJECT_DIR...).
    variables: dict[str, str] = field(default_factory=dict)
    #: Names whose values must not be expanded (`expand: false`).
    raw_variables: frozenset[str] = frozenset()
    timeout: int | None = None  # seconds
    retry: Retry = Retry()
    artifacts: Artifacts | None = None
    cache: tuple[Cache, ...] = ()
    tags: tuple[str, ...] = ()
    image: Image | None = None
    services: tuple[Service, ...] = ()
    environment: Environment | None = None
    resource_group: str | None = None
    interruptible: bool = False
    coverage: str | None = None  # a /regex/
    node_index: int | None = None  # CI_NODE_INDEX for parallel jobs
    node_total: int | None = None
    description: str | None = None

    @property
    def need_names(self) -> tuple[str, ...] | None:
        return None if self.needs is None else tuple(n.job for n in self.needs)

    def node(self) -> JobNode:
        return JobNode(
            name=self.name,
            stage_index=self.stage_index,
            when=self.when,
            needs=self.need_names,
            allow_failure=self.allow_failure.allowed,  # exit codes make a manual job block
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecutionPlan:
    created: bool  # false when workflow:rules said never
    name: str | None  # workflow:name, expanded
    stages: tuple[str, ...]
    jobs: tuple[JobSpec, ...]  # every job, those excluded by rules with when=never
    variables: dict[str, str] = field(default_factory=dict)  # pipeline-level
    #: ``workflow:auto_cancel:on_new_commit``: what a newer pipeline of the ref may cancel
    auto_cancel: AutoCancel = AutoCancel.CONSERVATIVE

    @property
    def runnable_jobs(self) -> tuple[JobSpec, ...]:
        return tuple(j for j in self.jobs if j.when != When.NEVER)

    def job(self, name: str) -> JobSpec:
        for job in self.jobs:
            if job.name == name:
                return job
        raise KeyError(name)
