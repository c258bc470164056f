"""``extends:``: build each job on top of the jobs or templates it names.

GitLab's ``Config::Extendable``: parents are merged in the order listed (a later parent wins
over an earlier one), each parent fully extended first, and the job's own keys go on top with
the same deep merge as ``include`` (mappings merge, lists and scalars are replaced, ``null``
replaces too). A chain may be eleven levels long, the job included ("nesting too deep" beyond,
``MAX_NESTING_LEVELS = 10`` ancestors); a job reached again along its own chain is a circular
dependency; a name that is not a top-level key, or names something that is not a mapping, is
an error. The problem messages keep GitLab's wording so they can be searched for.

Hidden jobs (``.name``) are extended like any other, since jobs may extend them and references
may point into them; the ``extends`` key is removed from every job it was resolved for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from ferrous.pipeline_config.config_paths import top_level_path
from ferrous.pipeline_config.deep_merge import merge_into
from ferrous.pipeline_config.keywords import is_job_key
from ferrous.pipeline_config.problems import MISSING_TEMPLATE, Position, Problems
from ferrous.pipeline_config.yaml_source import YMap, YSeq

#: Levels in one chain, the job itself included (GitLab: more than 10 ancestors is too deep).
MAX_EXTENDS_LEVELS: Final = 11


@dataclass(frozen=True, slots=True)
class _Parent:
    name: str
    path: str
    pos: Position


@dataclass(frozen=True, slots=True)
class _Resolved:
    job: Any
    chain: tuple[str, ...]  # the longest chain from this job down, itself first


def apply_extends(config: YMap, problems: Problems) -> None:
    """Resolve ``extends`` of every job in ``config``, replacing those jobs with new mappings."""
    extender = _Extender(config, problems)
    for key in list(config):
        value = config[key]
        if is_job_key(key) and isinstance(value, YMap) and "extends" in value:
            extender.resolve(key)


class _Extender:
    def __init__(self, config: YMap, problems: Problems) -> None:
        self.config = config
        self.problems = problems
        self.names = {str(key): key for key in config}
        self.done: dict[Any, _Resolved] = {}
        self.stack: list[Any] = []

    def resolve(self, key: Any) -> _Resolved:
        if key in self.done:
            return self.done[key]
        job = self.config[key]
        if not (is_job_key(key) and isinstance(job, YMap) and "extends" in job):
            return _Resolved(job=job, chain=(str(key),))
        self.stack.append(key)
        merged = YMap(pos=job.pos)
        longest: tuple[str, ...] = ()
        for parent in self._parents(key, job):
            base = self._base(key, parent)
            if base is None:
                continue
            merge_into(merged, base.job)
            if len(base.chain) > len(longest):
                longest = base.chain
        merge_into(merged, job)
        del merged["extends"]
        self.stack.pop()
        chain = (str(key), *longest)
        if len(chain) > MAX_EXTENDS_LEVELS >= len(longest):
            self.problems.error(
                f"{top_level_path(key)}.extends",
                f"{key}: nesting too deep in `extends`: {' -> '.join(chain)} is {len(chain)} "
                f"levels, at most {MAX_EXTENDS_LEVELS} are allowed",
                job.where("extends"),
            )
        self.config[key] = merged
        resolved = _Resolved(job=merged, chain=chain)
        self.done[key] = resolved
        return resolved

    def _base(self, key: Any, parent: _Parent) -> _Resolved | None:
        """The fully extended parent, or None after reporting why it cannot be used."""
        parent_key = self.names.get(parent.name)
        if parent_key is None:
            self.problems.error(
                parent.path,
                f"{key} extends {parent.name!r}, which is not defined",
                parent.pos,
                code=MISSING_TEMPLATE,
            )
            return None
        if parent_key in self.stack:
            loop = [str(k) for k in self.stack[self.stack.index(parent_key) :]]
            self.problems.error(
                parent.path,
                f"{key}: circular dependency detected in `extends` "
                f"({' -> '.join([*loop, parent.name])})",
                parent.pos,
            )
            return None
        if not isinstance(self.config[parent_key], dict):
            self.problems.error(
                parent.path, f"{key}: invalid base hashes in `extends` ({parent.name})", parent.pos
            )
            return None
        return self.resolve(parent_key)

    def _parents(self, key: Any, job: YMap) -> list[_Parent]:
        value = job["extends"]
        path = f"{top_level_path(key)}.extends"
        if isinstance(value, str):
            return [_Parent(name=value, path=path, pos=job.where("extends"))]
        if not isinstance(value, list):
            self.problems.error(
                path,
                f"{key}: extends should be a job name or a list of job names",
                job.where("extends"),
            )
            return []
        parents: list[_Parent] = []
        for index, item in enumerate(value):
            pos = value.where(index) if isinstance(value, YSeq) else job.where("extends")
            item_path = f"{path}[{index}]"
            if isinstance(item, str | int | float) and not isinstance(item, bool):
                parents.append(_Parent(name=str(item), path=item_path, pos=pos))
            else:
                self.problems.error(
                    item_path, f"{key}: extends should be a job name or a list of job names", pos
                )
        return parents
