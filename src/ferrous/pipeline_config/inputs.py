"""``spec:inputs`` headers: which inputs a file takes, and the values it gets.

A file may start with a header document (``spec: inputs: ...``) that declares what its
includer must or may pass: a type (string, number, boolean, array), a ``default`` (without one
the input is required), allowed ``options`` and a ``regex``. GitLab then interpolates the
file's own document before anything else looks at it, so an interpolated ``include:`` works
(see ``interpolation``). Without a header nothing is interpolated and passing inputs is an
error. Every value, given or default, is checked, and each problem names the input.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ferrous.pipeline_config.interpolation import as_text, interpolate
from ferrous.pipeline_config.problems import Position, Problems
from ferrous.pipeline_config.yaml_source import YMap, where

INPUT_TYPES = ("string", "number", "boolean", "array")
_SPEC_KEYS = frozenset({"default", "description", "options", "regex", "type"})


@dataclass(frozen=True, slots=True)
class InputsCall:
    """What an include passes: the values, and where to point problems about them."""

    values: Mapping[str, Any]
    path: str  # dotted path of the include entry, e.g. "include[0]"
    pos: Position
    source: YMap | None  # the ``inputs:`` mapping, for value positions


def split_header(documents: list[Any]) -> tuple[YMap | None, Any]:
    """The ``spec:`` header (if the first of several documents is one) and the pipeline."""
    if len(documents) >= 2 and isinstance(documents[0], YMap) and "spec" in documents[0]:
        return documents[0], documents[1]
    return None, documents[0] if documents else None


def apply_inputs(
    header: YMap | None,
    body: Any,
    call: InputsCall | None,
    variables: Mapping[str, str],
    problems: Problems,
) -> Any:
    """The body with inputs interpolated, every problem reported, never raising."""
    if header is None:
        if call is not None and call.values:
            problems.error(
                f"{call.path}.inputs",
                "Given inputs not defined in the `spec` section of the included configuration file",
                call.pos,
            )
        return body
    values, unusable = _input_values(header, call, problems)
    return interpolate(body, values, unusable, variables, problems)


def _input_values(
    header: YMap, call: InputsCall | None, problems: Problems
) -> tuple[dict[str, Any], set[str]]:
    """The value of every usable input, and the names of those reported as unusable."""
    spec = header.get("spec")
    declared = spec.get("inputs") if isinstance(spec, YMap) else None
    if declared is None:
        declared = YMap(pos=header.pos)
    if not isinstance(declared, YMap):
        problems.error(
            "spec.inputs", "spec:inputs must be a mapping of input names", where(spec, "inputs")
        )
        return {}, set()
    given = dict(call.values) if call else {}
    unknown = [str(name) for name in given if name not in declared]
    if unknown and call is not None:
        problems.error(
            f"{call.path}.inputs", f"unknown input arguments: {', '.join(unknown)}", call.pos
        )
    values: dict[str, Any] = {}
    unusable: set[str] = set()
    for name, spec_entry in declared.items():
        entry = spec_entry if isinstance(spec_entry, YMap) else YMap(pos=declared.where(name))
        if spec_entry is not None and not isinstance(spec_entry, YMap):
            problems.error(
                f"spec.inputs.{name}",
                f"`{name}` input: the specification must be a mapping",
                declared.where(name),
            )
            unusable.add(str(name))
            continue
        value = _checked_value(str(name), entry, given, call, problems)
        if value is _MISSING:
            unusable.add(str(name))
        else:
            values[str(name)] = value
    return values, unusable


_MISSING: Any = object()


def _checked_value(
    name: str, entry: YMap, given: dict[Any, Any], call: InputsCall | None, problems: Problems
) -> Any:
    spec_path = f"spec.inputs.{name}"
    for key in entry:
        if key not in _SPEC_KEYS:
            problems.error(
                f"{spec_path}.{key}",
                f"`{name}` input: unknown key `{key}` (known: {', '.join(sorted(_SPEC_KEYS))})",
                entry.where_key(key),
            )
    kind = entry.get("type", "string")
    if kind not in INPUT_TYPES:
        problems.error(
            f"{spec_path}.type",
            f"`{name}` input: unknown type `{kind}` (one of {', '.join(INPUT_TYPES)})",
            entry.where("type"),
        )
        return _MISSING
    if name in given:
        value = given[name]
        path = f"{call.path}.inputs.{name}" if call else spec_path
        pos = call.source.where(name) if call and call.source is not None else entry.pos
        what = "provided value"
    elif "default" in entry:
        value, path, pos, what = (
            entry["default"],
            f"{spec_path}.default",
            entry.where("default"),
            "default value",
        )
    else:
        problems.error(
            call.path if call else spec_path,
            f"`{name}` input: required value has not been provided",
            call.pos if call else entry.pos,
        )
        return _MISSING
    if not _has_type(value, kind):
        problems.error(path, f"`{name}` input: {what} is not a {kind}", pos)
        return _MISSING
    options = entry.get("options")
    if options is not None:
        allowed = list(options) if isinstance(options, list) else [options]
        chosen = value if isinstance(value, list) else [value]
        for item in chosen:
            if item not in allowed:
                problems.error(
                    path,
                    f"`{name}` input: `{as_text(item)}` cannot be used because it is not in "
                    "the list of allowed options",
                    pos,
                )
                return _MISSING
    regex = entry.get("regex")
    if regex is not None and isinstance(value, str):
        try:
            matched = re.search(str(regex), value) is not None
        except re.error as exc:
            problems.error(
                f"{spec_path}.regex",
                f"`{name}` input: invalid regular expression: {exc}",
                entry.where("regex"),
            )
            return _MISSING
        if not matched:
            problems.error(
                path, f"`{name}` input: {what} does not match required RegEx pattern", pos
            )
            return _MISSING
    return value


def _has_type(value: Any, kind: str) -> bool:
    if kind == "string":
        return isinstance(value, str)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "boolean":
        return isinstance(value, bool)
    return isinstance(value, list)
