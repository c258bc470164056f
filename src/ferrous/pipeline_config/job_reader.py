"""One job of the merged config, read into a draft: typed fields, rules, needs as written.

A draft is what the file says about a job, independent of the trigger. The compiler then
applies rules for a trigger, expands ``parallel`` and resolves ``needs`` across drafts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ferrous.domain.statuses import When
from ferrous.pipeline_config.checks import Checker, did_you_mean
from ferrous.pipeline_config.defaults import inherited_variables
from ferrous.pipeline_config.job_fields import (
    read_allow_failure,
    read_artifacts,
    read_caches,
    read_environment,
    read_image,
    read_retry,
    read_services,
    read_variables,
)
from ferrous.pipeline_config.keywords import (
    DEFAULT_JOB_STAGE,
    JOB_KEYWORDS,
    NOT_EXECUTED_JOB_KEYWORDS,
)
from ferrous.pipeline_config.needs import NeedRef, read_needs
from ferrous.pipeline_config.plan import (
    AllowFailure,
    Artifacts,
    Cache,
    Environment,
    Image,
    Retry,
    Service,
)
from ferrous.pipeline_config.problems import MISSING_SCRIPT, Position
from ferrous.pipeline_config.rules import OnlyExcept, Rule, read_only_except, read_rules
from ferrous.pipeline_config.yaml_source import YMap, where

JOB_WHEN = ("on_success", "on_failure", "always", "manual", "delayed", "never")
ONE_WEEK = 604800


@dataclass(slots=True, kw_only=True)
class JobDraft:
    name: str
    path: str
    pos: Position
    stage: str = DEFAULT_JOB_STAGE
    stage_pos: Position
    when: When | None = None
    start_in: int | None = None
    allow_failure: AllowFailure | None = None
    needs: tuple[NeedRef, ...] | None = None
    needs_pos: Position | None = None
    dependencies: tuple[str, ...] | None = None
    dependencies_pos: Position | None = None
    before_script: tuple[str, ...] = ()
    script: tuple[str, ...] = ()
    after_script: tuple[str, ...] = ()
    variables: dict[str, str] = field(default_factory=dict)
    raw_variables: frozenset[str] = frozenset()
    timeout: int | None = None
    retry: Retry = field(default_factory=Retry)
    artifacts: Artifacts | None = None
    cache: tuple[Cache, ...] = ()
    tags: tuple[str, ...] = ()
    image: Image | None = None
    services: tuple[Service, ...] = ()
    environment: Environment | None = None
    resource_group: str | None = None
    interruptible: bool = False
    coverage: str | None = None
    parallel: Any = None
    parallel_pos: Position | None = None
    rules: tuple[Rule, ...] | None = None
    only: OnlyExcept | None = None
    except_: OnlyExcept | None = None
    inherit_variables: bool | tuple[str, ...] = True
    description: str | None = None
    is_trigger: bool = False


def read_job(check: Checker, name: str, job: YMap, pos: Position) -> JobDraft:
    """Read one job; ``pos`` is where its name stands, which is where its problems point."""
    path = f"jobs.{name}"
    draft = JobDraft(name=name, path=path, pos=pos, stage_pos=pos)
    for key in job:
        if key not in JOB_KEYWORDS:
            check.error(
                f"{path}.{key}",
                f"job {name!r}: unknown keyword {key!r}{did_you_mean(key, JOB_KEYWORDS)}",
                job.where_key(key),
            )
        elif key in NOT_EXECUTED_JOB_KEYWORDS:
            check.warning(
                f"{path}.{key}",
                f"job {name!r}: {key} is parsed but {NOT_EXECUTED_JOB_KEYWORDS[key]}",
                job.where_key(key),
            )
    _read_scripts(check, job, draft)
    _read_flow(check, job, draft)
    _read_environment_keys(check, job, draft)
    return draft


def _at(job: YMap, path: str, key: str) -> tuple[Any, str, Position]:
    return job[key], f"{path}.{key}", job.where(key)


def _read_scripts(check: Checker, job: YMap, draft: JobDraft) -> None:
    for key in ("before_script", "script", "after_script"):
        if key in job and job[key] is not None:
            lines = check.script(*_at(job, draft.path, key))
            if key == "script" and lines == ():  # GitLab: `script` can't be blank
                check.error(
                    f"{draft.path}.script",
                    f"{draft.path}.script should not be empty",
                    job.where(key),
                )
            if lines is not None:
                setattr(draft, key, lines)
    draft.is_trigger = "trigger" in job
    if draft.is_trigger:
        _check_trigger(check, job, draft)
    if "script" not in job and not draft.is_trigger and "run" not in job:
        check.error(
            f"{draft.path}.script",
            f"job {draft.name!r} has no script: add `script:` (or `trigger:` for a "
            "downstream pipeline)",
            draft.pos,
            code=MISSING_SCRIPT,
        )


def _check_trigger(check: Checker, job: YMap, draft: JobDraft) -> None:
    """What GitLab's config validation checks of a trigger job, though we do not run it."""
    for key in ("script", "run"):
        if key in job:  # a job with a script is a Job entry, which has no `trigger` key
            check.error(
                f"{draft.path}.trigger",
                f"job {draft.name!r}: trigger cannot be used together with {key}",
                job.where_key("trigger"),
            )
    trigger = job["trigger"]
    includes = trigger.get("include") if isinstance(trigger, dict) else None
    for index, entry in enumerate(includes if isinstance(includes, list) else ()):
        if isinstance(entry, dict) and "project" in entry and not entry.get("file"):
            check.error(
                f"{draft.path}.trigger.include[{index}]",
                f"job {draft.name!r}: trigger:include[{index}] names project "
                f"{entry['project']!r} but no file to fetch the config from",
                where(includes, index),
            )


def _read_flow(check: Checker, job: YMap, draft: JobDraft) -> None:
    path = draft.path
    if "stage" in job:
        draft.stage = check.string(*_at(job, path, "stage"), numbers=True) or DEFAULT_JOB_STAGE
        draft.stage_pos = job.where("stage")
    if "when" in job:
        when = check.choice(*_at(job, path, "when"), JOB_WHEN)
        if when == "never":
            check.error(
                f"{path}.when",
                f"job {draft.name!r}: when: never can only be used in rules or workflow:rules",
                job.where("when"),
            )
        elif when is not None:
            draft.when = When(when)
    if "start_in" in job:
        draft.start_in = check.duration(*_at(job, path, "start_in"), maximum=ONE_WEEK)
    if draft.when == When.DELAYED and "start_in" not in job and "rules" not in job:
        check.error(
            f"{path}.start_in", f"job {draft.name!r}: when: delayed needs start_in", draft.pos
        )
    if "allow_failure" in job:
        draft.allow_failure = read_allow_failure(check, *_at(job, path, "allow_failure"))
    if "needs" in job:
        draft.needs = read_needs(check, *_at(job, path, "needs"))
        draft.needs_pos = job.where("needs")
    if "dependencies" in job:
        draft.dependencies = check.strings(*_at(job, path, "dependencies"), scalar_ok=False)
        draft.dependencies_pos = job.where("dependencies")
    if job.get("rules") is not None:  # GitLab treats a key set to null as not set
        draft.rules = read_rules(check, *_at(job, path, "rules"))
        for key in ("only", "except"):
            if key in job:
                check.error(
                    f"{path}.{key}",
                    f"job {draft.name!r}: {key} cannot be used together with rules",
                    job.where_key(key),
                )
    else:
        if "only" in job:
            draft.only = read_only_except(check, *_at(job, path, "only"))
        if "except" in job:
            draft.except_ = read_only_except(check, *_at(job, path, "except"))
    if "parallel" in job:
        draft.parallel = job["parallel"]
        draft.parallel_pos = job.where("parallel")
    if "retry" in job:
        draft.retry = read_retry(check, *_at(job, path, "retry")) or Retry()
    if "timeout" in job:
        draft.timeout = check.duration(*_at(job, path, "timeout"))
    if "interruptible" in job:
        draft.interruptible = bool(check.boolean(*_at(job, path, "interruptible")))
    inherit = job.get("inherit")
    if isinstance(inherit, dict) and "variables" in inherit:
        value = inherit["variables"]
        if isinstance(value, bool):
            draft.inherit_variables = value
        elif isinstance(value, list):
            draft.inherit_variables = tuple(str(v) for v in value)


def _read_environment_keys(check: Checker, job: YMap, draft: JobDraft) -> None:
    path = draft.path
    variables, draft.raw_variables = read_variables(
        check, job.get("variables"), f"{path}.variables", job.where("variables")
    )
    # The merge layer already copied inherited globals in; keep only the job's own, so that
    # workflow:rules variables can sit between the two as GitLab orders them.
    inherited = inherited_variables(job)
    draft.variables = {k: v for k, v in variables.items() if k not in inherited}
    if "artifacts" in job:
        draft.artifacts = read_artifacts(check, *_at(job, path, "artifacts"))
    if "cache" in job:
        draft.cache = read_caches(check, *_at(job, path, "cache"))
    if "tags" in job:
        draft.tags = check.strings(*_at(job, path, "tags"), scalar_ok=False) or ()
    if job.get("image") is not None:
        draft.image = read_image(check, *_at(job, path, "image"))
    if "services" in job:
        draft.services = read_services(check, *_at(job, path, "services"))
    if job.get("environment") is not None:
        draft.environment = read_environment(check, *_at(job, path, "environment"))
    if job.get("resource_group") is not None:
        draft.resource_group = check.string(*_at(job, path, "resource_group"))
    if job.get("coverage") is not None:
        coverage = check.string(*_at(job, path, "coverage"))
        if coverage is not None and not (
            len(coverage) >= 2 and coverage.startswith("/") and coverage.endswith("/")
        ):
            check.error(
                f"{path}.coverage",
                f"job {draft.name!r}: coverage should be a /regular expression/",
                job.where("coverage"),
            )
        else:
            draft.coverage = coverage
    if job.get("description") is not None:
        draft.description = str(job["description"])
