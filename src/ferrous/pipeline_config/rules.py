"""``rules``, ``only``/``except`` and ``workflow:rules``: which jobs a pipeline gets.

Rules are read (and their expressions parsed) once per job, so a broken ``if`` is reported even
when an earlier rule would have matched; evaluation is then cheap and happens per trigger.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ferrous.domain.auto_cancel import AutoCancel
from ferrous.domain.statuses import When
from ferrous.pipeline_config.auto_cancel import read_auto_cancel
from ferrous.pipeline_config.checks import Checker
from ferrous.pipeline_config.context import TriggerContext
from ferrous.pipeline_config.expressions import ExpressionError, parse_expression
from ferrous.pipeline_config.globs import any_match
from ferrous.pipeline_config.job_fields import read_allow_failure, read_variables
from ferrous.pipeline_config.plan import AllowFailure
from ferrous.pipeline_config.problems import Position
from ferrous.pipeline_config.repo_files import RepoFiles
from ferrous.pipeline_config.variables import expand
from ferrous.pipeline_config.yaml_source import YMap, where

RULE_KEYS = (
    "if", "changes", "exists", "when", "allow_failure", "variables", "needs", "start_in",
    "interruptible",
)  # fmt: skip
WORKFLOW_RULE_KEYS = ("if", "changes", "exists", "when", "variables", "auto_cancel")
RULE_WHEN = ("on_success", "on_failure", "always", "manual", "delayed", "never")
ONLY_KEYS = ("refs", "variables", "changes", "kubernetes")
#: `only:refs` keywords and the pipeline sources they stand for.
REF_KEYWORDS: dict[str, tuple[str, ...]] = {
    "api": ("api",),
    "chat": ("chat",),
    "external": ("external",),
    "external_pull_requests": ("external_pull_request_event",),
    "merge_requests": ("merge_request_event",),
    "pipelines": ("pipeline", "parent_pipeline"),
    "pushes": ("push",),
    "schedules": ("schedule",),
    "triggers": ("trigger",),
    "web": ("web",),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Rule:
    pos: Position
    condition: str | None = None
    changes: tuple[str, ...] | None = None
    exists: tuple[str, ...] | None = None
    when: When | None = None
    allow_failure: AllowFailure | None = None
    variables: dict[str, str] = field(default_factory=dict)
    needs: Any = None  # raw needs, read by the caller like job-level needs
    start_in: int | None = None
    interruptible: bool | None = None
    auto_cancel: AutoCancel | None = None  # workflow rules only: `auto_cancel:on_new_commit`


@dataclass(frozen=True, slots=True)
class Files:
    """What `changes` and `exists` look at, resolved once per trigger."""

    repo: RepoFiles | None
    context: TriggerContext

    def changed(self, patterns: tuple[str, ...], variables: Mapping[str, str]) -> bool:
        if self.context.changed_files is None:
            return True  # GitLab: unknown changes (new branch, web, schedule) count as changed
        expanded = [expand(p, variables) for p in patterns]
        return any_match(expanded, self.context.changed_files)

    def exist(self, patterns: tuple[str, ...], variables: Mapping[str, str]) -> bool:
        expanded = [expand(p, variables) for p in patterns]
        if self.context.existing_files is not None:
            return any_match(expanded, self.context.existing_files)
        return self.repo is not None and any(self.repo.exists(p) for p in expanded)


def read_rules(
    check: Checker, value: Any, path: str, pos: Position, *, workflow: bool = False
) -> tuple[Rule, ...]:
    if not isinstance(value, list):
        check.error(path, f"{path} should be a list of rules", pos)
        return ()
    rules = []
    for index, item in enumerate(value):
        rule_path, rule_pos = f"{path}[{index}]", where(value, index)
        if item is None:
            continue
        mapping = check.mapping(item, rule_path, rule_pos)
        if mapping is not None:
            rules.append(_read_rule(check, mapping, rule_path, workflow=workflow))
    return tuple(rules)


def _read_rule(check: Checker, rule: YMap, path: str, *, workflow: bool) -> Rule:
    check.unknown_keys(rule, WORKFLOW_RULE_KEYS if workflow else RULE_KEYS, path, "a rule")
    auto_cancel = None
    if workflow and "auto_cancel" in rule:
        auto_cancel = read_auto_cancel(
            check, rule["auto_cancel"], f"{path}.auto_cancel", rule.where("auto_cancel")
        )
    condition = None
    if "if" in rule:
        condition = check_expression(check, rule["if"], f"{path}.if", rule.where("if"))
    changes = _read_paths(check, rule, "changes", path)
    exists = _read_paths(check, rule, "exists", path)
    when = None
    if "when" in rule:
        choices = ("never", "always") if workflow else RULE_WHEN
        read = check.choice(rule["when"], f"{path}.when", rule.where("when"), choices)
        when = When(read) if read else None
    allow_failure = None
    if "allow_failure" in rule:
        allow_failure = read_allow_failure(
            check, rule["allow_failure"], f"{path}.allow_failure", rule.where("allow_failure")
        )
    start_in = None
    if "start_in" in rule:
        start_in = check.duration(
            rule["start_in"], f"{path}.start_in", rule.where("start_in"), maximum=604800
        )
    interruptible = None
    if "interruptible" in rule:
        interruptible = check.boolean(
            rule["interruptible"], f"{path}.interruptible", rule.where("interruptible")
        )
    variables, _ = read_variables(
        check, rule.get("variables"), f"{path}.variables", rule.where("variables")
    )
    return Rule(
        pos=rule.pos,
        condition=condition,
        changes=changes,
        exists=exists,
        when=when,
        allow_failure=allow_failure,
        variables=variables,
        needs=rule.get("needs"),
        start_in=start_in,
        interruptible=interruptible,
        auto_cancel=auto_cancel,
    )


def _read_paths(check: Checker, rule: YMap, key: str, path: str) -> tuple[str, ...] | None:
    if key not in rule:
        return None
    value = rule[key]
    if isinstance(value, dict):
        mapping = check.mapping(value, f"{path}.{key}", rule.where(key))
        if mapping is None:
            return None
        allowed = ("paths", "compare_to") if key == "changes" else ("paths", "project", "ref")
        check.unknown_keys(mapping, allowed, f"{path}.{key}", f"rules:{key}")
        if mapping.get("compare_to") is not None and check.string(  # GitLab: a ref name
            mapping["compare_to"], f"{path}.{key}.compare_to", mapping.where("compare_to")
        ):
            check.warning(
                f"{path}.{key}.compare_to",
                "rules:changes:compare_to is not applied yet: changes are those of the "
                "trigger (the push's commits)",
                mapping.where_key("compare_to"),
            )
        if "project" in mapping:
            check.warning(
                f"{path}.{key}.project",
                "rules:exists in another project is not supported yet; "
                "it is treated as not existing",
                mapping.where_key("project"),
            )
            return ()
        value = mapping.get("paths")
    return check.strings(value, f"{path}.{key}", rule.where(key), scalar_ok=False)


def check_expression(check: Checker, value: Any, path: str, pos: Position) -> str | None:
    text = check.string(value, path, pos)
    if text is None:
        return None
    try:
        parse_expression(text)
    except ExpressionError as exc:
        check.error(
            path, f"invalid expression {text!r}: {exc.message} (at character {exc.offset + 1})", pos
        )
        return None
    return text


def first_match(rules: tuple[Rule, ...], variables: Mapping[str, str], files: Files) -> Rule | None:
    """The first rule whose clauses all hold; GitLab's "first match wins"."""
    for rule in rules:
        if rule.condition is not None and not parse_expression(rule.condition).evaluate(variables):
            continue
        if rule.changes is not None and not files.changed(rule.changes, variables):
            continue
        if rule.exists is not None and not files.exist(rule.exists, variables):
            continue
        return rule
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class OnlyExcept:
    refs: tuple[str, ...] | None = None
    variables: tuple[str, ...] = ()
    changes: tuple[str, ...] | None = None


def read_only_except(check: Checker, value: Any, path: str, pos: Position) -> OnlyExcept | None:
    if isinstance(value, list | str):
        refs = check.strings(value, path, pos)
        return None if refs is None else OnlyExcept(refs=refs)
    mapping = check.mapping(value, path, pos)
    if mapping is None:
        return None
    check.unknown_keys(mapping, ONLY_KEYS, path, path.rsplit(".", 1)[-1])
    if "kubernetes" in mapping:
        check.warning(
            f"{path}.kubernetes",
            "only/except:kubernetes is not supported and is ignored",
            mapping.where_key("kubernetes"),
        )
    refs = (
        check.strings(mapping["refs"], f"{path}.refs", mapping.where("refs"))
        if "refs" in mapping
        else None
    )
    expressions = []
    raw_vars = (
        check.strings(mapping.get("variables"), f"{path}.variables", mapping.where("variables"))
        or ()
    )
    for index, text in enumerate(raw_vars):
        checked = check_expression(
            check, text, f"{path}.variables[{index}]", where(mapping.get("variables"), index)
        )
        if checked:
            expressions.append(checked)
    changes = None
    if "changes" in mapping:
        changes = _read_paths(check, mapping, "changes", path)
    return OnlyExcept(refs=refs, variables=tuple(expressions), changes=changes)


def _ref_matches(ref: str, context: TriggerContext) -> bool:
    ref = ref.split("@", 1)[0]  # `branch@group/project`: we only know our own project
    if ref == "branches":
        return context.branch is not None and context.source != "merge_request_event"
    if ref == "tags":
        return context.tag is not None
    if ref in REF_KEYWORDS:
        return context.source in REF_KEYWORDS[ref]
    name = context.ref_name
    if len(ref) >= 2 and ref.startswith("/") and ref.rindex("/") > 0:
        body, _, flags = ref[1:].rpartition("/")
        try:
            regex = re.compile(body, re.IGNORECASE if "i" in flags else 0)
        except re.error:
            return False
        return regex.search(name) is not None
    return ref == name


def only_except_allows(
    only: OnlyExcept | None, except_: OnlyExcept | None, variables: Mapping[str, str], files: Files
) -> bool:
    """GitLab's `only`/`except`: every given `only` clause must hold, no `except` clause may."""
    context = files.context
    if only is None:
        only = OnlyExcept(refs=("branches", "tags"))
    if only.refs is not None and not any(_ref_matches(r, context) for r in only.refs):
        return False
    if only.variables and not any(parse_expression(v).evaluate(variables) for v in only.variables):
        return False
    if only.changes is not None and not files.changed(only.changes, variables):
        return False
    if except_ is None:
        return True
    clauses: list[bool] = []
    if except_.refs is not None:
        clauses.append(any(_ref_matches(r, context) for r in except_.refs))
    if except_.variables:
        clauses.append(any(parse_expression(v).evaluate(variables) for v in except_.variables))
    if except_.changes is not None:
        clauses.append(files.changed(except_.changes, variables))
    return not (clauses and all(clauses))
