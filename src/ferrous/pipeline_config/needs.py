"""``needs`` as written: job names, ``job:`` mappings, and matrix selections.

Reading is separate from resolving: a need names a job of the file, while the pipeline has
that job's expanded instances, known only after rules and ``parallel`` are applied.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ferrous.pipeline_config.checks import Checker
from ferrous.pipeline_config.matrix import combinations, read_matrix
from ferrous.pipeline_config.problems import Position
from ferrous.pipeline_config.yaml_source import where

NEED_KEYS = ("job", "artifacts", "optional", "parallel", "pipeline", "project", "ref")
MAX_NEEDS = 50


@dataclass(frozen=True, slots=True, kw_only=True)
class NeedRef:
    job: str
    artifacts: bool = True
    optional: bool = False
    #: `parallel: matrix` selection: variable combinations of the instances wanted.
    matrix: tuple[dict[str, str], ...] | None = None
    path: str
    pos: Position


def read_needs(check: Checker, value: Any, path: str, pos: Position) -> tuple[NeedRef, ...] | None:
    if value is None:
        return ()
    if not isinstance(value, list):
        value = [value]
    if len(value) > MAX_NEEDS:
        check.error(path, f"{path} lists {len(value)} jobs; at most {MAX_NEEDS} are allowed", pos)
    needs: list[NeedRef] = []
    for index, item in enumerate(value):
        item_path, item_pos = f"{path}[{index}]", where(value, index)
        if item is None:
            continue  # an empty entry, e.g. from an anchor with a blank item: nothing needed
        if isinstance(item, str):
            needs.append(NeedRef(job=item, path=item_path, pos=item_pos))
            continue
        mapping = check.mapping(item, item_path, item_pos)
        if mapping is None:
            continue
        check.unknown_keys(mapping, NEED_KEYS, item_path, "needs")
        if "pipeline" in mapping or "project" in mapping:
            check.warning(
                item_path,
                f"{item_path}: needs from another pipeline or project are not supported yet "
                "and are ignored",
                mapping.pos,
            )
            continue
        job = check.string(mapping.get("job"), f"{item_path}.job", mapping.where("job"))
        if job is None:
            continue
        flags = {
            key: check.boolean(mapping[key], f"{item_path}.{key}", mapping.where(key))
            for key in ("artifacts", "optional")
            if key in mapping
        }
        matrix = None
        if "parallel" in mapping:
            parallel = check.mapping(
                mapping["parallel"], f"{item_path}.parallel", mapping.where("parallel")
            )
            if parallel is not None and "matrix" in parallel:
                entries = read_matrix(
                    check,
                    parallel["matrix"],
                    f"{item_path}.parallel.matrix",
                    parallel.where("matrix"),
                )
                matrix = tuple(combinations(entries)) if entries is not None else None
        needs.append(
            NeedRef(
                job=job,
                artifacts=flags.get("artifacts") is not False,
                optional=flags.get("optional") is True,
                matrix=matrix,
                path=item_path,
                pos=mapping.where("job"),
            )
        )
    return tuple(needs)
