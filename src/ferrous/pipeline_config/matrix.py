"""``parallel: N`` and ``parallel: matrix``: one job in the file, several in the pipeline.

Names follow GitLab exactly (``build 1/3``, ``test: [3.11, linux]``), because people search
for those names in the UI and ``needs`` refer to them.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from ferrous.pipeline_config.checks import Checker
from ferrous.pipeline_config.problems import Position
from ferrous.pipeline_config.yaml_source import where

MAX_PARALLEL = 200


@dataclass(frozen=True, slots=True)
class Instance:
    name: str
    variables: dict[str, str]
    index: int  # CI_NODE_INDEX, from 1
    total: int  # CI_NODE_TOTAL


def _scalar(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str | int | float):
        return str(value)
    return None


def read_matrix(
    check: Checker, value: Any, path: str, pos: Position
) -> list[dict[str, list[str]]] | None:
    """The matrix as a list of entries, each mapping a variable to its list of values."""
    if not isinstance(value, list) or not value:
        check.error(path, f"{path} should be a non-empty list of variable mappings", pos)
        return None
    entries: list[dict[str, list[str]]] = []
    for index, item in enumerate(value):
        item_path, item_pos = f"{path}[{index}]", where(value, index)
        mapping = check.mapping(item, item_path, item_pos)
        if mapping is None:
            return None
        entry: dict[str, list[str]] = {}
        for name, values in mapping.items():
            raw = values if isinstance(values, list) else [values]
            texts = [_scalar(v) for v in raw]
            if not raw or any(t is None for t in texts):
                check.error(
                    f"{item_path}.{name}",
                    f"{item_path}.{name} should be a string or a list of strings",
                    mapping.where(name),
                )
                return None
            entry[str(name)] = [t for t in texts if t is not None]
        entries.append(entry)
    return entries


def combinations(entries: list[dict[str, list[str]]]) -> list[dict[str, str]]:
    """Every variable combination, in GitLab's order (entries in order, cartesian product)."""
    out: list[dict[str, str]] = []
    for entry in entries:
        names = list(entry)
        for values in itertools.product(*(entry[n] for n in names)):
            out.append(dict(zip(names, values, strict=True)))
    return out


def matrix_name(base: str, variables: dict[str, str]) -> str:
    return f"{base}: [{', '.join(variables.values())}]"


def expand_parallel(
    check: Checker, base: str, value: Any, path: str, pos: Position
) -> list[Instance] | None:
    """The instances of a job with ``parallel``; None after reporting a problem."""
    if isinstance(value, int) and not isinstance(value, bool):
        count = check.integer(value, path, pos, low=1, high=MAX_PARALLEL)
        if count is None:
            return None
        return [Instance(f"{base} {i}/{count}", {}, i, count) for i in range(1, count + 1)]
    mapping = check.mapping(value, path, pos)
    if mapping is None:
        return None
    check.unknown_keys(mapping, ("matrix",), path, "parallel")
    if "matrix" not in mapping:
        check.error(path, f"{path} should be a number or have a matrix", pos)
        return None
    entries = read_matrix(check, mapping["matrix"], f"{path}.matrix", mapping.where("matrix"))
    if entries is None:
        return None
    combos = combinations(entries)
    if len(combos) > MAX_PARALLEL:
        check.error(
            f"{path}.matrix",
            f"{path}.matrix makes {len(combos)} jobs; at most {MAX_PARALLEL} are allowed",
            mapping.where("matrix"),
        )
        return None
    total = len(combos)
    return [
        Instance(matrix_name(base, combo), combo, index, total)
        for index, combo in enumerate(combos, start=1)
    ]
