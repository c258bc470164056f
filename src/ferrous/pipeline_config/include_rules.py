"""``include:rules``: whether an include applies, decided while the config is being merged.

GitLab evaluates these before any job exists, with only the pipeline's own variables (project,
trigger and predefined ones, never the file's ``variables:``), and accepts ``if``, ``exists``,
``changes`` and ``when: never|always``. The first rule whose clauses all hold decides; when no
rule holds the file is not included.

``changes`` needs the push's diff, which the merge step does not have; GitLab treats
``changes`` as true when it cannot compare (new branch, web, schedule), and so do we, with a
warning so nobody believes it was checked.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ferrous.pipeline_config.expressions import ExpressionError, evaluate
from ferrous.pipeline_config.problems import Position, Problems
from ferrous.pipeline_config.repo_files import RepoFiles
from ferrous.pipeline_config.variable_expansion import expand_existing
from ferrous.pipeline_config.yaml_source import YMap, YSeq, where

_RULE_KEYS = frozenset({"if", "exists", "changes", "when"})
_WHEN = frozenset({"never", "always"})


def include_applies(
    rules: Any,
    path: str,
    pos: Position,
    repo: RepoFiles,
    variables: Mapping[str, str],
    problems: Problems,
) -> bool:
    """Evaluate ``rules`` of one include entry; a broken rule reports and never matches."""
    if not isinstance(rules, YSeq):
        problems.error(path, "include:rules config should be an array of rules", pos)
        return False
    for index, rule in enumerate(rules):
        rule_path = f"{path}[{index}]"
        if not isinstance(rule, YMap):
            problems.error(
                rule_path, "include:rules:rule config should be a hash", rules.where(index)
            )
            continue
        if not _valid_rule(rule, rule_path, problems):
            continue
        if _matches(rule, rule_path, repo, variables, problems):
            return bool(rule.get("when", "always") != "never")
    return False


def _valid_rule(rule: YMap, path: str, problems: Problems) -> bool:
    valid = True
    for key in rule:
        if key not in _RULE_KEYS:
            problems.error(
                f"{path}.{key}",
                f"include:rules:rule config contains unknown keys: {key}",
                rule.where_key(key),
            )
            valid = False
    when = rule.get("when", "always")
    if when not in _WHEN:
        problems.error(
            f"{path}.when",
            f"include:rules:rule when unknown value: {when} (use never or always)",
            rule.where("when"),
        )
        valid = False
    return valid


def _matches(
    rule: YMap, path: str, repo: RepoFiles, variables: Mapping[str, str], problems: Problems
) -> bool:
    if "if" in rule and not _if_holds(rule, path, variables, problems):
        return False
    if "exists" in rule and not _exists_holds(
        rule["exists"], f"{path}.exists", rule.where("exists"), repo, variables, problems
    ):
        return False
    if "changes" in rule:
        problems.warning(
            f"{path}.changes",
            "include:rules:changes cannot be checked while merging the config; it counts as "
            "true, as GitLab does when it has no diff to compare",
            rule.where("changes"),
        )
    return True


def _if_holds(rule: YMap, path: str, variables: Mapping[str, str], problems: Problems) -> bool:
    text = rule["if"]
    if not isinstance(text, str):
        problems.error(f"{path}.if", "include:rules:if should be a string", rule.where("if"))
        return False
    try:
        return evaluate(text, variables)
    except ExpressionError as exc:
        problems.error(
            f"{path}.if",
            f"include:rules:if invalid expression: {exc.message} (at offset {exc.offset})",
            rule.where("if"),
        )
        return False


def _exists_holds(
    clause: Any,
    path: str,
    pos: Position,
    repo: RepoFiles,
    variables: Mapping[str, str],
    problems: Problems,
) -> bool:
    globs: Any = clause
    if isinstance(clause, YMap):
        if "project" in clause:
            problems.error(
                f"{path}.project",
                "include:rules:exists:project is not supported yet: only this repository's "
                "files can be checked",
                clause.where("project"),
            )
            return False
        globs = clause.get("paths")
    if isinstance(globs, str):
        globs = [globs]
    if not isinstance(globs, list) or not all(isinstance(glob, str) for glob in globs):
        problems.error(
            path,
            "include:rules:exists should be a path or a list of paths",
            where(clause, "paths") if isinstance(clause, YMap) else pos,
        )
        return False
    return any(repo.exists(expand_existing(glob, variables)) for glob in globs)
