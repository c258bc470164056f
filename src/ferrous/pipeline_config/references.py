"""``!reference [job, key, ...]``: replace each tag by the value it points at, in place.

This runs on the merged config after ``extends`` (GitLab's order: includes, extends, then
``Tags::Resolver``), so a reference sees a template's inherited keys, and an ``extends`` sees
an unresolved reference as an opaque value that a child's own key replaces wholesale.

A reference becomes exactly the value it names, as GitLab does: one inside a list whose target
is a list leaves a nested list (``[[a, b], c]``). The keys that accept nesting flatten it
later (see ``nested_lists``); that is also where GitLab's "10 levels deep" limit on nested
``!reference`` in scripts is enforced, because it is a limit on the nesting of the result.

A referenced value that itself holds references is resolved first, so chains work to any
depth; a reference that needs itself is a circular chain. GitLab treats a target that is null
or ``false`` like a missing one (``raise ... unless value``), and so do we. Where GitLab
cannot look through a reference on the way to the target (``[.a, script]`` when ``.a`` is
itself ``!reference [.b]``), we resolve it and go on: that config is simply accepted.

Resolved values are shared, not copied, between every place that references them: the whole
tree is walked once and nothing is deep-copied.
"""

from __future__ import annotations

from typing import Any, Final, TypeAlias

from ferrous.pipeline_config.config_paths import child_path, item_path
from ferrous.pipeline_config.problems import MISSING_REFERENCE, Position, Problems
from ferrous.pipeline_config.yaml_source import Reference, YMap, YSeq, position_of

#: GitLab sets no limit on chains of references (only on script nesting); this one keeps
#: recursion bounded on generated configs and is far beyond anything written by hand.
MAX_CHAIN: Final = 64

_MISSING: Final[Any] = object()  # not there: the reference reports "could not be found"
_FAILED: Final[Any] = object()  # a problem on the way was already reported


def resolve_references(config: YMap, problems: Problems) -> None:
    """Replace every ``Reference`` in ``config`` by its target; problems name the tag's place."""
    _Resolver(config, problems).walk(config, None)


def format_reference(path: tuple[str, ...]) -> str:
    return "[" + ", ".join(path) + "]"


#: Where a value sits, as a linked list ``(parent, key or index)`` built while walking and
#: turned into a dotted path only when a problem is reported: most places never need one.
_Where: TypeAlias = "tuple[_Where, Any] | None"
_CONTAINERS: Final = (dict, list)
_WALKING: Final = False
_DONE: Final = True


def _dotted(where: _Where) -> str:
    parts: list[Any] = []
    while where is not None:
        where, key = where
        parts.append(key)
    path = ""
    for key in reversed(parts):
        path = item_path(path, key) if isinstance(key, int) and path else child_path(path, key)
    return path


class _Resolver:
    def __init__(self, config: YMap, problems: Problems) -> None:
        self.config = config
        self.problems = problems
        self.state: dict[int, bool] = {}  # id of a container -> walked (True) or walking
        self.active: list[tuple[str, ...]] = []
        self.broken: set[tuple[str, ...]] = set()  # part of a reported cycle or chain

    def walk(self, node: Any, where: _Where) -> None:
        """Resolve the references inside a container once, however often it is shared."""
        node_id = id(node)
        if node_id in self.state:
            return
        self.state[node_id] = _WALKING
        if isinstance(node, dict):
            self._walk_map(node, where)
        else:
            self._walk_list(node, where)
        self.state[node_id] = _DONE

    def _walk_map(self, node: dict[Any, Any], where: _Where) -> None:
        # Assigning to existing keys while iterating is safe: the mapping never changes size.
        for key, value in node.items():
            if isinstance(value, _CONTAINERS):
                self.walk(value, (where, key))
            elif isinstance(value, Reference):
                resolved = self.resolve(value, (where, key))
                node[key] = None if resolved is _MISSING else resolved

    def _walk_list(self, node: list[Any], where: _Where) -> None:
        items: list[Any] | None = None  # a new item list, started at the first reference
        positions: list[Position] = []
        for index, item in enumerate(node):
            if isinstance(item, Reference):
                if items is None:
                    items = node[:index]
                    positions = [_item_position(node, i) for i in range(index)]
                resolved = self.resolve(item, (where, index))
                if resolved is not _MISSING:
                    items.append(resolved)
                    positions.append(_item_position(node, index))
                continue
            if isinstance(item, _CONTAINERS):
                self.walk(item, (where, index))
            if items is not None:
                items.append(item)
                positions.append(_item_position(node, index))
        if items is not None:
            node[:] = items
            if isinstance(node, YSeq):
                node.item_pos = positions

    def resolve(self, ref: Reference, where: _Where) -> Any:
        """The fully resolved value of ``ref``, or ``_MISSING`` after reporting why not."""
        target = ref.path
        if not target or target in self.broken:  # already reported
            return _MISSING
        if target in self.active:
            self.problems.error(
                _dotted(where),
                f"!reference circular chain detected {format_reference(target)}",
                ref.pos,
            )
            return _MISSING
        if len(self.active) >= MAX_CHAIN:
            self.problems.error(
                _dotted(where),
                f"!reference {format_reference(target)}: more than {MAX_CHAIN} references "
                "lead to one another",
                ref.pos,
            )
            return _MISSING
        self.active.append(target)
        try:
            value = self._dig(ref, where)
        finally:
            self.active.pop()
        if value is _FAILED:
            self.broken.add(target)
            return _MISSING
        if value is _MISSING or value is None or value is False:
            self.problems.error(
                _dotted(where),
                f"!reference {format_reference(target)} could not be found",
                ref.pos,
                code=MISSING_REFERENCE,
            )
            return _MISSING
        return value

    def _dig(self, ref: Reference, where: _Where) -> Any:
        node: Any = self.config
        at: _Where = None
        for part in ref.path:
            if not isinstance(node, dict):
                return _MISSING
            key = _find_key(node, part)
            if key is _MISSING:
                return _MISSING
            at = (at, key)
            value = node[key]
            if isinstance(value, Reference):
                value = self.resolve(value, at)
                if value is _MISSING:
                    return _FAILED
                node[key] = value
            node = value
        if isinstance(node, _CONTAINERS):
            if self.state.get(id(node)) is _WALKING:
                self.problems.error(
                    _dotted(where),
                    f"!reference circular chain detected {format_reference(ref.path)}",
                    ref.pos,
                )
                return _FAILED
            self.walk(node, at)
        return node


def _item_position(node: list[Any], index: int) -> Position:
    return node.where(index) if isinstance(node, YSeq) else position_of(node)


def _find_key(node: dict[Any, Any], part: str) -> Any:
    """The key ``part`` names: GitLab compares names as text, so ``[job, 1]`` finds key ``1``."""
    if part in node:
        return part
    for key in node:
        if str(key) == part:
            return key
    return _MISSING
