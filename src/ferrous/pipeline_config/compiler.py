"""From a repository and a trigger to an execution plan and every problem found on the way.

parse -> merge (includes, references, extends, defaults) -> read jobs -> workflow and job rules
for this trigger -> expand ``parallel`` -> resolve ``needs`` -> check the graph. Every stage
reports into one ``Problems`` collector; a plan is returned even when there are errors, so
``ferrous lint`` can show the jobs and the problems together.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ferrous.domain.auto_cancel import AutoCancel
from ferrous.domain.statuses import When
from ferrous.pipeline_config.auto_cancel import read_auto_cancel
from ferrous.pipeline_config.checks import Checker
from ferrous.pipeline_config.context import TriggerContext
from ferrous.pipeline_config.graph import resolve_graph
from ferrous.pipeline_config.job_fields import read_variables
from ferrous.pipeline_config.job_reader import JobDraft, read_job
from ferrous.pipeline_config.keywords import (
    DEFAULT_KEYWORDS,
    DEFAULT_STAGES,
    GLOBAL_KEYWORDS,
    STAGE_POST,
    STAGE_PRE,
    is_hidden_job,
)
from ferrous.pipeline_config.plan import ExecutionPlan
from ferrous.pipeline_config.problems import (
    MAYBE_FROM_INCLUDES,
    UNRESOLVED_INCLUDE,
    ConfigProblem,
    Problems,
)
from ferrous.pipeline_config.repo_files import RepoFiles
from ferrous.pipeline_config.resolve import resolve_config
from ferrous.pipeline_config.rules import Files, first_match, read_rules
from ferrous.pipeline_config.variables import expand, expand_mapping
from ferrous.pipeline_config.yaml_source import YMap

PIPELINE_FILES = (".ferrous.yml", ".ferrous.yaml", ".gitlab-ci.yml", ".gitlab-ci.yaml")
WORKFLOW_KEYS = ("rules", "name", "auto_cancel")


@dataclass(frozen=True, slots=True)
class CompileResult:
    plan: ExecutionPlan
    problems: list[ConfigProblem]
    file: str

    @property
    def has_errors(self) -> bool:
        return any(p.severity == "error" for p in self.problems)


def find_pipeline_file(repo_dir: Path) -> str | None:
    """``.ferrous.yml`` wins over ``.gitlab-ci.yml``, so a project can override the latter."""
    for name in PIPELINE_FILES:
        if (repo_dir / name).is_file():
            return name
    return None


def compile_pipeline(
    repo_dir: Path,
    context: TriggerContext,
    *,
    file: str | None = None,
    text: str | None = None,
) -> CompileResult:
    problems = Problems()
    file = file or find_pipeline_file(repo_dir) or PIPELINE_FILES[0]
    predefined = {**context.predefined_variables(), "CI_CONFIG_PATH": file}
    seed = {**predefined, **context.variables}
    empty = ExecutionPlan(created=False, name=None, stages=DEFAULT_STAGES, jobs=())
    if text is None and not (repo_dir / file).is_file():
        problems.error("", f"no pipeline file: looked for {', '.join(PIPELINE_FILES)}", None)
        return CompileResult(empty, problems.sorted(), file)
    repo = RepoFiles(repo_dir)  # one file list for includes and rules:exists
    config = resolve_config(repo_dir, file, seed, problems, text=text, repo=repo)
    check = Checker(problems)
    stages = _read_stages(check, config)
    _check_globals(check, config)
    global_vars, global_raw = read_variables(
        check, config.get("variables"), "variables", config.where("variables")
    )
    files = Files(repo, context)
    pipeline_vars = expand_mapping({**predefined, **global_vars, **context.variables}, global_raw)
    created, workflow_vars, name, auto_cancel = _workflow(check, config, pipeline_vars, files)
    pipeline_vars = expand_mapping(
        {**predefined, **global_vars, **workflow_vars, **context.variables}, global_raw
    )
    drafts = [
        read_job(check, str(key), value, config.where_key(key))
        for key, value in config.items()
        if key not in GLOBAL_KEYWORDS and not is_hidden_job(key) and _is_job(check, config, key)
    ]
    if not drafts and not problems.has_errors:
        problems.error(
            "", "the pipeline has no jobs: add at least one job with a script", config.pos
        )
    jobs = resolve_graph(
        check,
        drafts,
        stages,
        predefined=predefined,
        global_variables={**global_vars, **workflow_vars},
        trigger_variables=context.variables,
        global_raw=global_raw,
        files=files,
    )
    _soften_include_gaps(problems)
    plan = ExecutionPlan(
        created=created and not problems.has_errors,
        name=expand(name, pipeline_vars) if name else None,
        stages=stages,
        jobs=tuple(jobs),
        variables=pipeline_vars,
        auto_cancel=auto_cancel,
    )
    return CompileResult(plan, problems.sorted(), file)


def _soften_include_gaps(problems: Problems) -> None:
    """When an include could not be resolved, what it would have defined is missing too.

    Those follow-on problems (an unknown template, stage or need, a job whose script came
    from the template) become warnings that say so: the one actionable error is the include.
    """
    if not any(p.code == UNRESOLVED_INCLUDE for p in problems.items):
        return
    problems.items[:] = [
        replace(
            p,
            severity="warning",
            message=p.message + " (it may be defined by an include that was not resolved)",
        )
        if p.code in MAYBE_FROM_INCLUDES and p.severity == "error"
        else p
        for p in problems.items
    ]


def _is_job(check: Checker, config: YMap, key: Any) -> bool:
    if isinstance(config[key], dict):
        return True
    check.error(
        f"jobs.{key}",
        f"{key!r} is not a keyword, so it is read as a job, and a job should be a mapping "
        f"with a script (hide templates with a leading dot: .{key})",
        config.where_key(key),
    )
    return False


def _read_stages(check: Checker, config: YMap) -> tuple[str, ...]:
    if "stages" not in config:
        return DEFAULT_STAGES
    value = config["stages"]
    if not isinstance(value, list):
        check.error("stages", "stages should be a list of stage names", config.where("stages"))
        return DEFAULT_STAGES
    # GitLab's Entry::Stages takes strings only: `stages: [1, 2]` is invalid
    names = (
        check.strings(value, "stages", config.where("stages"), scalar_ok=False, numbers=False) or ()
    )
    seen: list[str] = []
    for index, stage in enumerate(names):
        if stage in seen:
            check.warning(
                f"stages[{index}]",
                f"stage {stage!r} is listed twice",
                value.item_pos[index] if hasattr(value, "item_pos") else config.pos,
            )
        elif stage not in (STAGE_PRE, STAGE_POST):
            seen.append(stage)
    return (STAGE_PRE, *seen, STAGE_POST)


def _check_globals(check: Checker, config: YMap) -> None:
    default = config.get("default")
    if default is not None:
        mapping = check.mapping(default, "default", config.where("default"))
        if mapping is not None:
            check.unknown_keys(mapping, DEFAULT_KEYWORDS, "default", "default")
    workflow = config.get("workflow")
    if workflow is not None:
        mapping = check.mapping(workflow, "workflow", config.where("workflow"))
        if mapping is not None:
            check.unknown_keys(mapping, WORKFLOW_KEYS, "workflow", "workflow")


def _workflow(
    check: Checker, config: YMap, variables: dict[str, str], files: Files
) -> tuple[bool, dict[str, str], str | None, AutoCancel]:
    """Whether the pipeline is created, the variables the matching rule adds, its name, and
    its ``auto_cancel:on_new_commit`` (the matching rule's, else the workflow's)."""
    workflow = config.get("workflow")
    if not isinstance(workflow, YMap):
        return True, {}, None, AutoCancel.CONSERVATIVE
    name = None
    if "name" in workflow:
        name = check.string(workflow["name"], "workflow.name", workflow.where("name"), numbers=True)
    auto_cancel = AutoCancel.CONSERVATIVE
    if "auto_cancel" in workflow:
        where = workflow.where("auto_cancel")
        auto_cancel = (
            read_auto_cancel(check, workflow["auto_cancel"], "workflow.auto_cancel", where)
            or auto_cancel
        )
    if "rules" not in workflow:
        return True, {}, name, auto_cancel
    rules = read_rules(
        check, workflow["rules"], "workflow.rules", workflow.where("rules"), workflow=True
    )
    rule = first_match(rules, variables, files)
    if rule is None or rule.when == When.NEVER:
        return False, {}, name, auto_cancel
    return True, dict(rule.variables), name, rule.auto_cancel or auto_cancel


__all__ = ["CompileResult", "JobDraft", "compile_pipeline", "find_pipeline_file"]
