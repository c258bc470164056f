"""Flatten the lists GitLab flattens, once references and inputs have nested them.

``!reference`` and array inputs put a list where an item stood, so ``script: [!reference
[.setup, script], make]`` is ``[[a, b], make]``. GitLab accepts that only where the keyword
entry flattens its value:

* commands (``script``, ``before_script``, ``after_script``,
  ``hooks:pre_get_sources_script``): nested up to 10 levels deep, counting the list itself,
  and beyond that "should be a string or a nested array of strings up to 10 levels deep";
* ``rules``, ``needs`` and ``cache`` (GitLab's composable arrays): flattened at any depth.

Elsewhere (``tags``, ``services``, ...) a nested list stays as written, for lint to reject as
GitLab does. Only jobs GitLab builds are touched, with ``default:`` and the deprecated top-level
script keys: hidden jobs are templates, and GitLab never validates them.

A flattened list is a new ``YSeq`` whose items keep the positions they were written at;
the nested lists themselves are shared with other jobs and never modified.
"""

from __future__ import annotations

from typing import Any, Final

from ferrous.pipeline_config.config_paths import top_level_path
from ferrous.pipeline_config.deep_merge import copy_map
from ferrous.pipeline_config.keywords import is_hidden_job, is_job_key
from ferrous.pipeline_config.problems import Position, Problems
from ferrous.pipeline_config.yaml_source import YMap, YSeq

#: GitLab's ``Entry::Commands::MAX_NESTING_LEVEL``.
MAX_SCRIPT_NESTING: Final = 10
COMMAND_KEYS: Final = ("before_script", "script", "after_script")
COMPOSABLE_KEYS: Final = ("rules", "needs", "cache")


def flatten_nested_lists(config: YMap, problems: Problems) -> None:
    """Flatten, in ``config``'s jobs and globals, every list GitLab reads flattened.

    Copy on write: a job or global mapping with something to flatten is replaced by a copy,
    so mappings shared with templates or other jobs are never changed.
    """
    for key, value in config.items():
        if not isinstance(value, YMap):
            continue
        path = top_level_path(key)
        if (is_job_key(key) and not is_hidden_job(key)) or key == "default":
            config[key] = _flat_job(value, path, problems)
        elif key == "workflow":
            config[key] = _flat_keys(value, path, {"rules": None}, problems)
    limits = {"before_script": MAX_SCRIPT_NESTING, "after_script": MAX_SCRIPT_NESTING}
    flat_globals = _flat_keys(config, "", {**limits, "cache": None}, problems)
    for key in limits.keys() | {"cache"}:
        if key in config and flat_globals[key] is not config[key]:
            config[key] = flat_globals[key]


_JOB_LIMITS: Final[dict[str, int | None]] = {
    **dict.fromkeys(COMMAND_KEYS, MAX_SCRIPT_NESTING),
    **dict.fromkeys(COMPOSABLE_KEYS, None),
}


def _flat_job(job: YMap, path: str, problems: Problems) -> YMap:
    result = _flat_keys(job, path, _JOB_LIMITS, problems)
    hooks = result.get("hooks")
    if isinstance(hooks, YMap):
        flat_hooks = _flat_keys(
            hooks, f"{path}.hooks", {"pre_get_sources_script": MAX_SCRIPT_NESTING}, problems
        )
        if flat_hooks is not hooks:
            result = result if result is not job else copy_map(job)
            result["hooks"] = flat_hooks
    return result


def _flat_keys(owner: YMap, path: str, limits: dict[str, int | None], problems: Problems) -> YMap:
    """``owner``, or a copy of it with the nested lists under ``limits``' keys flattened."""
    result = owner
    for key, max_depth in limits.items():
        value = owner.get(key)
        if isinstance(value, list) and _is_nested(value):
            if result is owner:
                result = copy_map(owner)
            result[key] = _flattened(
                value, owner.where(key), f"{path}.{key}" if path else key, max_depth, problems
            )
    return result


def _is_nested(value: list[Any]) -> bool:
    return any(isinstance(item, list) for item in value)


def _flattened(
    value: list[Any], pos: Position, path: str, max_depth: int | None, problems: Problems
) -> YSeq:
    depth = _depth(value)
    if max_depth is not None and depth > max_depth:
        key = path.rsplit(".", 1)[-1]
        problems.error(
            path,
            f"{key} config should be a string or a nested array of strings up to "
            f"{max_depth} levels deep (it is {depth} levels deep)",
            pos,
        )
    flat = YSeq(pos=value.pos if isinstance(value, YSeq) else pos)
    _extend(flat, value, pos)
    return flat


def _depth(value: list[Any]) -> int:
    deepest = 1
    pending: list[tuple[list[Any], int]] = [(value, 1)]
    while pending:
        current, level = pending.pop()
        deepest = max(deepest, level)
        pending.extend((item, level + 1) for item in current if isinstance(item, list))
    return deepest


def _extend(flat: YSeq, value: list[Any], fallback: Position) -> None:
    for index, item in enumerate(value):
        if isinstance(item, list):
            _extend(flat, item, value.where(index) if isinstance(value, YSeq) else fallback)
        else:
            flat.append(item)
            flat.item_pos.append(value.where(index) if isinstance(value, YSeq) else fallback)
