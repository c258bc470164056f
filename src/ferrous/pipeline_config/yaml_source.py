"""YAML as GitLab reads it, with a position for every value.

GitLab loads pipeline files as YAML 1.1 (an unquoted ``3.10`` is the float 3.1, ``on`` is
true), with anchors, merge keys and the ``!reference`` tag. Lint problems must point at a line
and column long after the YAML nodes are gone, so mappings and sequences are loaded as
``YMap``/``YSeq``: plain ``dict``/``list`` subclasses that also remember where each key and
value stood. Everything downstream can treat them as ordinary containers.

libyaml (PyYAML's C parser) is used when present: loading is the hot path of ``ferrous lint``.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass
from typing import Any

import yaml

from ferrous.pipeline_config.problems import UNKNOWN_POSITION, Position, Problems

try:
    _BaseLoader: type[yaml.SafeLoader] = yaml.CSafeLoader  # type: ignore[assignment]  # libyaml is optional
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _BaseLoader = yaml.SafeLoader


class YMap(dict[Any, Any]):
    """A mapping that remembers where it, its keys and its values stood in the source."""

    __slots__ = ("key_pos", "pos", "value_pos")

    def __init__(self, *args: Any, pos: Position = UNKNOWN_POSITION, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pos = pos
        self.key_pos: dict[Any, Position] = {}
        self.value_pos: dict[Any, Position] = {}

    def where(self, key: Any) -> Position:
        """Position of the value under ``key`` (or of the key, or of the mapping)."""
        return self.value_pos.get(key) or self.key_pos.get(key) or self.pos

    def where_key(self, key: Any) -> Position:
        return self.key_pos.get(key) or self.pos

    def set(self, key: Any, value: Any, key_pos: Position, value_pos: Position) -> None:
        self[key] = value
        self.key_pos[key] = key_pos
        self.value_pos[key] = value_pos

    def copy_from(self, other: YMap, key: Any) -> None:
        """Copy one entry with its positions, so merged configs still point at real lines."""
        self.set(key, other[key], other.where_key(key), other.where(key))


class YSeq(list[Any]):
    """A sequence that remembers where it and each of its items stood in the source."""

    __slots__ = ("item_pos", "pos")

    def __init__(self, *args: Any, pos: Position = UNKNOWN_POSITION) -> None:
        super().__init__(*args)
        self.pos = pos
        self.item_pos: list[Position] = []

    def where(self, index: int) -> Position:
        if 0 <= index < len(self.item_pos):
            return self.item_pos[index]
        return self.pos


@dataclass(frozen=True, slots=True)
class Reference:
    """A ``!reference [job, key, ...]`` tag, resolved after includes are merged."""

    path: tuple[str, ...]
    pos: Position


def where(container: Any, key: Any) -> Position:
    """Position of ``container[key]`` for any loaded container, or of the container itself."""
    if isinstance(container, YMap):
        return container.where(key)
    if isinstance(container, YSeq) and isinstance(key, int):
        return container.where(key)
    return position_of(container)


def position_of(value: Any) -> Position:
    if isinstance(value, YMap | YSeq | Reference):
        return value.pos
    return UNKNOWN_POSITION


_STR = "tag:yaml.org,2002:str"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_MERGE = "tag:yaml.org,2002:merge"


class _Loader(_BaseLoader):  # type: ignore[valid-type,misc]  # base chosen at import: C or pure
    """Composes nodes with libyaml, then builds YMap/YSeq from them in one plain recursion.

    PyYAML's own construction (generators, a state machine per node) costs more than parsing;
    building directly from the node tree keeps loading a 500-job file in tens of milliseconds.
    An alias builds a fresh copy of its anchor, so merging into one job never changes another.
    """

    source_name: str
    problems: Problems

    def position(self, node: yaml.Node) -> Position:
        mark = node.start_mark
        return Position(self.source_name, mark.line + 1, mark.column + 1)

    def build(self, node: yaml.Node) -> Any:
        tag = node.tag
        if isinstance(node, yaml.ScalarNode):
            if tag == _STR:
                return node.value
            if tag == _TIMESTAMP:  # dates stay text: GitLab refuses Date objects
                return node.value
            constructor = self.yaml_constructors.get(tag)
            if constructor is not None:
                return constructor(self, node)
        if tag == "!reference":
            return self.build_reference(node)
        if isinstance(node, yaml.MappingNode):
            if tag != _MAP:
                self.unknown_tag(node)
            return self.build_map(node)
        if isinstance(node, yaml.SequenceNode):
            if tag != _SEQ:
                self.unknown_tag(node)
            return self.build_seq(node)
        self.unknown_tag(node)
        return node.value

    def unknown_tag(self, node: yaml.Node) -> None:
        self.problems.error("", f"unknown YAML tag {node.tag}", self.position(node))

    def build_map(self, node: yaml.MappingNode) -> YMap:
        self.check_duplicate_keys(node)
        self.flatten_mapping(node)
        result = YMap(pos=self.position(node))
        for key_node, value_node in node.value:
            key = self.build(key_node)
            if isinstance(key, list | dict):
                self.problems.error("", "a mapping key must be a scalar", self.position(key_node))
                continue
            result.set(
                key, self.build(value_node), self.position(key_node), self.position(value_node)
            )
        return result

    def build_seq(self, node: yaml.SequenceNode) -> YSeq:
        result = YSeq([self.build(item) for item in node.value], pos=self.position(node))
        result.item_pos = [self.position(item) for item in node.value]
        return result

    def build_reference(self, node: yaml.Node) -> Reference:
        pos = self.position(node)
        if not isinstance(node, yaml.SequenceNode) or not node.value:
            self.problems.error("", "!reference needs a list such as [.job, script]", pos)
            return Reference(path=(), pos=pos)
        parts = [self.build(item) for item in node.value]
        if not all(isinstance(p, str | int) for p in parts):
            self.problems.error("", "!reference items must be job names and keys", pos)
            return Reference(path=(), pos=pos)
        return Reference(path=tuple(str(p) for p in parts), pos=pos)

    def check_duplicate_keys(self, node: yaml.MappingNode) -> None:
        seen: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == _MERGE:
                continue
            key = self.build(key_node)
            if key in seen:
                first = self.position(seen[key])
                self.problems.warning(
                    str(key),
                    f"duplicated mapping key {key!r} (first at line {first.line}); "
                    "the last one wins",
                    self.position(key_node),
                )
            seen[key] = key_node


def load_documents(text: str, source_name: str, problems: Problems) -> list[Any]:
    """Load every YAML document of ``text``; a syntax error becomes a problem, not an exception."""
    loader = _Loader(text)
    loader.source_name = source_name
    loader.problems = problems
    documents: list[Any] = []
    collecting = gc.isenabled()
    gc.disable()  # tens of thousands of small objects, none cyclic: GC passes are pure cost
    try:
        while loader.check_node():
            documents.append(loader.build(loader.get_node()))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        pos = (
            Position(file=source_name, line=mark.line + 1, column=mark.column + 1)
            if mark
            else Position(file=source_name, line=1, column=1)
        )
        reason = " ".join(part for part in (exc.context, exc.problem) if part)
        problems.error("", f"invalid YAML: {reason}", pos)
    except yaml.YAMLError as exc:
        problems.error("", f"invalid YAML: {exc}", Position(file=source_name, line=1, column=1))
    finally:
        loader.dispose()
        if collecting:
            gc.enable()
    return documents


def pipeline_document(documents: list[Any]) -> Any:
    """The pipeline of a file: the second document when the first is a ``spec:`` header."""
    if len(documents) >= 2 and isinstance(documents[0], dict) and "spec" in documents[0]:
        return documents[1]
    return documents[0] if documents else None
