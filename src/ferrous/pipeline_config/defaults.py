"""``default:`` and global ``variables:``, copied into the jobs that inherit them.

GitLab fills each keyword a job leaves unset (absent or ``null``) from ``default:``, and from
the deprecated top-level ``image``, ``services``, ``cache``, ``before_script`` and
``after_script`` when ``default:`` does not set them itself. ``inherit:default`` limits that to
nothing (``false``) or to the listed keywords.

Global ``variables:`` are merged here too, under the job's own (the job wins), limited by
``inherit:variables``. The merged mapping is a ``JobVariables`` that records which names came
from the globals, because what comes later needs to tell them apart: ``workflow:rules``
variables override global variables but not a job's own. The global ``variables:`` also stay
at the top level, for the pipeline-level uses (``workflow:rules``, ``include`` paths).

Hidden jobs are templates GitLab never builds, so they get neither.
"""

from __future__ import annotations

from ferrous.pipeline_config.config_paths import top_level_path
from ferrous.pipeline_config.deep_merge import copy_map, overlay
from ferrous.pipeline_config.keywords import (
    DEFAULT_KEYWORDS,
    DEPRECATED_GLOBAL_DEFAULTS,
    is_hidden_job,
    is_job_key,
)
from ferrous.pipeline_config.problems import Position, Problems
from ferrous.pipeline_config.yaml_source import YMap, YSeq

_INHERIT_KEYS = ("default", "variables")


class JobVariables(YMap):
    """A job's variables with the inherited globals merged under its own ones."""

    __slots__ = ("inherited",)

    def __init__(self, *, pos: Position, inherited: frozenset[str] = frozenset()) -> None:
        super().__init__(pos=pos)
        self.inherited = inherited


def inherited_variables(job: YMap) -> frozenset[str]:
    """Names in ``job``'s variables that came from the global ``variables:``, not the job."""
    variables = job.get("variables")
    return variables.inherited if isinstance(variables, JobVariables) else frozenset()


def apply_defaults(config: YMap, problems: Problems) -> None:
    """Give every job of ``config`` the defaults and global variables it inherits."""
    defaults = _defaults(config, problems)
    global_vars = config.get("variables")
    if not isinstance(global_vars, YMap):
        global_vars = YMap()
    for key in list(config):
        job = config[key]
        if is_job_key(key) and not is_hidden_job(key) and isinstance(job, YMap):
            config[key] = _inherit(job, top_level_path(key), defaults, global_vars, problems)


def _defaults(config: YMap, problems: Problems) -> dict[str, YMap]:
    """Each default keyword with the mapping that holds it (for its positions)."""
    default = config.get("default")
    found: dict[str, YMap] = {}
    if isinstance(default, YMap):
        for key in default:
            if key in DEFAULT_KEYWORDS:
                if default[key] is not None:
                    found[key] = default
            else:
                problems.error(
                    f"default.{key}",
                    f"default config contains unknown keys: {key}",
                    default.where_key(key),
                )
    elif default is not None:
        problems.error("default", "default config should be a hash", config.where("default"))
    for key in DEPRECATED_GLOBAL_DEFAULTS:
        if key not in config or config[key] is None:
            continue
        if key in found:
            problems.warning(
                key,
                f"{key} is set both at the top level (deprecated) and under default:; "
                f"default:{key} is used",
                config.where_key(key),
            )
        else:
            found[key] = config
    return found


def _inherit(
    job: YMap, path: str, defaults: dict[str, YMap], global_vars: YMap, problems: Problems
) -> YMap:
    inherit = job.get("inherit")
    if inherit is not None and not isinstance(inherit, YMap):
        problems.error(f"{path}.inherit", "inherit config should be a hash", job.where("inherit"))
        inherit = None
    if isinstance(inherit, YMap):
        for key in inherit:
            if key not in _INHERIT_KEYS:
                problems.error(
                    f"{path}.inherit.{key}",
                    f"inherit config contains unknown keys: {key}",
                    inherit.where_key(key),
                )
    wanted_defaults = _selection(inherit, "default", path, set(DEFAULT_KEYWORDS), problems)
    wanted_vars = _selection(inherit, "variables", path, None, problems)
    result = copy_map(job)
    for key, holder in defaults.items():
        if result.get(key) is None and (wanted_defaults is None or key in wanted_defaults):
            if key in result:
                del result[key]  # a null key is unset: the default goes last, like a new key
            result.copy_from(holder, key)
    _merge_variables(result, path, global_vars, wanted_vars, problems)
    return result


def _selection(
    inherit: YMap | None, key: str, path: str, allowed: set[str] | None, problems: Problems
) -> set[str] | None:
    """None for everything, else the names ``inherit:<key>`` lets through."""
    if inherit is None or key not in inherit or inherit[key] is None or inherit[key] is True:
        return None
    value = inherit[key]
    where = f"{path}.inherit.{key}"
    if value is False:
        return set()
    if not isinstance(value, list) or not all(isinstance(name, str) for name in value):
        problems.error(
            where,
            f"inherit:{key} config should be a boolean value or an array of strings",
            inherit.where(key),
        )
        return None
    names = set(value)
    if allowed is not None:
        for index, name in enumerate(value):
            if name not in allowed:
                problems.error(
                    f"{where}[{index}]",
                    f"inherit:{key} config contains unknown values: {name} "
                    f"(default: can set {', '.join(sorted(allowed))})",
                    value.where(index) if isinstance(value, YSeq) else inherit.where(key),
                )
    return names


def _merge_variables(
    job: YMap, path: str, global_vars: YMap, wanted: set[str] | None, problems: Problems
) -> None:
    own = job.get("variables")
    if own is not None and not isinstance(own, dict):
        return  # not a mapping: lint reports it; there is nothing sound to merge into
    names = [name for name in global_vars if wanted is None or name in wanted]
    if wanted:
        for name in sorted(wanted - set(global_vars)):
            problems.warning(
                f"{path}.inherit.variables",
                f"inherit:variables names {name}, which is not a global variable",
                job.where("inherit"),
            )
    if not names:
        return
    pos = own.pos if isinstance(own, YMap) else global_vars.pos
    own_names = set(own) if own else set()
    merged = JobVariables(pos=pos, inherited=frozenset(str(n) for n in names if n not in own_names))
    if wanted is None:
        overlay(merged, global_vars)
    else:
        for name in names:
            merged.copy_from(global_vars, name)
    if own is not None:
        overlay(merged, own)  # a job's variable replaces a global one whole, even a mapping
    if "variables" in job:
        job["variables"] = merged
    else:
        job.set("variables", merged, global_vars.pos, global_vars.pos)
