"""``$[[ inputs.name ]]`` interpolation of a file's document, keys included.

A string that is exactly one block takes the input's typed value (``rules: $[[ inputs.r ]]``
becomes a list, ``interruptible: $[[ inputs.b ]]`` a boolean); a block inside a longer string
is replaced by text, arrays as compact JSON (``["a","b"]``). A block may pipe the value through
up to three of GitLab's functions: ``expand_vars``, ``truncate(offset,length)`` and
``posix_escape``. The document is rebuilt, not changed: a file included twice with different
inputs is parsed once.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Collection, Mapping
from typing import Any

from ferrous.pipeline_config.config_paths import child_path, item_path
from ferrous.pipeline_config.problems import Position, Problems
from ferrous.pipeline_config.variable_expansion import expand_existing
from ferrous.pipeline_config.yaml_source import YMap, YSeq, position_of

_BLOCK = re.compile(r"\$\[\[\s*(.*?)\s*\]\]", re.DOTALL)
_ACCESS = re.compile(r"inputs\.([A-Za-z0-9_-]+)\Z")
_FUNCTION = re.compile(r"([a-z_]+)(?:\(\s*([^)]*?)\s*\))?\Z")
_MAX_FUNCTIONS = 3
_SHELL_SAFE = re.compile(r"[^A-Za-z0-9_\-.,:+/@\n]")


def interpolate(
    body: Any,
    values: Mapping[str, Any],
    unusable: Collection[str],
    variables: Mapping[str, str],
    problems: Problems,
) -> Any:
    """``body`` with every block replaced; ``unusable`` inputs were declared but already
    reported (missing, wrong type), so their blocks become empty without a second problem."""
    return _Interpolator(values, unusable, variables, problems).walk(body)


def as_text(value: Any) -> str:
    """How a typed value reads inside a longer string: ``true``, ``1``, ``["a","b"]``."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    if value is None:
        return ""
    return str(value)


class _Interpolator:
    def __init__(
        self,
        values: Mapping[str, Any],
        unusable: Collection[str],
        variables: Mapping[str, str],
        problems: Problems,
    ) -> None:
        self.values = values
        self.unusable = unusable
        self.variables = variables
        self.problems = problems

    def walk(self, node: Any, path: str = "", pos: Position | None = None) -> Any:
        if isinstance(node, YMap):
            result = YMap(pos=node.pos)
            for key, value in node.items():
                key_pos = node.where_key(key)
                new_key = (
                    self.string(key, path, key_pos, typed=False) if isinstance(key, str) else key
                )
                child = child_path(path, new_key)
                result.set(
                    new_key, self.walk(value, child, node.where(key)), key_pos, node.where(key)
                )
            return result
        if isinstance(node, YSeq):
            seq = YSeq(pos=node.pos)
            for index, item in enumerate(node):
                seq.append(self.walk(item, item_path(path, index), node.where(index)))
            seq.item_pos = list(node.item_pos)
            return seq
        if isinstance(node, str):
            return self.string(node, path, pos or position_of(node), typed=True)
        return node

    def string(self, text: str, path: str, pos: Position, *, typed: bool) -> Any:
        if "$[[" not in text:
            return text
        whole = _BLOCK.fullmatch(text)
        if whole and typed:
            return self.block(whole.group(1), path, pos)
        return _BLOCK.sub(lambda m: as_text(self.block(m.group(1), path, pos)), text)

    def block(self, content: str, path: str, pos: Position) -> Any:
        access, *functions = [part.strip() for part in content.split("|")]
        found = _ACCESS.match(access)
        if not found:
            self.problems.error(
                path,
                f"unknown interpolation provided: `{access}` "
                "(only `inputs.<name>` can be used here)",
                pos,
            )
            return ""
        name = found.group(1)
        if name in self.unusable:
            return ""
        if name not in self.values:
            self.problems.error(path, f"unknown interpolation key: `{name}`", pos)
            return ""
        if len(functions) > _MAX_FUNCTIONS:
            self.problems.error(
                path, f"too many functions in interpolation block (at most {_MAX_FUNCTIONS})", pos
            )
            return self.values[name]
        value = self.values[name]
        for function in functions:
            value = self.call(function, value, path, pos)
        return value

    def call(self, text: str, value: Any, path: str, pos: Position) -> Any:
        found = _FUNCTION.match(text)
        name = found.group(1) if found else text
        handler = _FUNCTIONS.get(name)
        if found is None or handler is None:
            self.problems.error(
                path,
                f"no function matching `{text}`: "
                "use expand_vars, truncate(offset,length) or posix_escape",
                pos,
            )
            return value
        if not isinstance(value, str):
            self.problems.error(
                path, f"invalid input type: {name} can only be used with string inputs", pos
            )
            return value
        args = [arg.strip() for arg in found.group(2).split(",")] if found.group(2) else []
        try:
            return handler(self, value, args)
        except ValueError as exc:
            self.problems.error(path, f"{name}: {exc}", pos)
            return value


def _expand_vars(interp: _Interpolator, value: str, args: list[str]) -> str:
    if args:
        raise ValueError("takes no arguments")
    return expand_existing(value, interp.variables)


def _truncate(_: _Interpolator, value: str, args: list[str]) -> str:
    if len(args) != 2 or not all(arg.isdigit() for arg in args):
        raise ValueError("needs two non-negative whole numbers: truncate(offset,length)")
    offset, length = int(args[0]), int(args[1])
    return value[offset : offset + length]


def _posix_escape(_: _Interpolator, value: str, args: list[str]) -> str:
    """Ruby's ``Shellwords.escape``, which is what GitLab calls."""
    if args:
        raise ValueError("takes no arguments")
    if not value:
        return "''"
    return _SHELL_SAFE.sub(lambda m: "\\" + m.group(0), value).replace("\n", "'\n'")


_FUNCTIONS: dict[str, Callable[[_Interpolator, str, list[str]], str]] = {
    "expand_vars": _expand_vars,
    "truncate": _truncate,
    "posix_escape": _posix_escape,
}
