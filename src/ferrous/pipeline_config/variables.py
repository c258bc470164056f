"""Variable expansion: ``$VAR`` and ``${VAR}`` in values, and variables made of variables.

``expand`` is what the runner does to a value (Go's ``os.Expand`` with ``$$`` meaning ``$``);
``expand_mapping`` is what GitLab does to a job's variables before the runner sees them:
every value gets the others' fully expanded values, whatever the order they were defined in.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping

_REFERENCE = re.compile(r"\$(?:\$|\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")


def expand(text: str, variables: Mapping[str, str]) -> str:
    """Expand references in ``text``; an undefined variable becomes ``""``.

    Anything that is not a reference (a ``$`` before a character that cannot start a name,
    ``${`` without a valid name and ``}``, a trailing ``$``) is left as written, so that
    shell syntax such as ``$(date)`` or ``$1`` survives for the script to interpret.
    """
    return _substitute(text, variables, frozenset()) if "$" in text else text


def expand_mapping(variables: Mapping[str, str], raw: Collection[str] = ()) -> dict[str, str]:
    """Expand every value with the fully expanded values of the others.

    A name in ``raw`` (GitLab's ``expand: false``) keeps its value verbatim, and that verbatim
    value is what a reference to it inserts. A reference that closes a cycle (``A: $B``,
    ``B: $A``, or ``A: $A``) stays as written: GitLab refuses such a job with "circular
    variable reference detected", which is for the linter to report (see
    ``reference_cycles``); here the result only has to be finite and the same whatever the
    order of definition. Inserted values are never scanned again, so ``$$`` in one value
    cannot turn into a reference in another.
    """
    raw_names = frozenset(raw)
    # Most values (all predefined ones, typically) refer to nothing: they are final as they
    # are, and only the rest need the reference graph. This keeps compiling hundreds of jobs
    # with dozens of variables each cheap.
    expanded: dict[str, str] = {
        name: value for name, value in variables.items() if name in raw_names or "$" not in value
    }
    pending = {name: value for name, value in variables.items() if name not in expanded}
    graph = _graph(pending, raw_names)  # references to final values are no edges
    for component in _components(graph):  # dependencies come first
        cyclic = len(component) > 1 or component[0] in graph[component[0]]
        keep = frozenset(component) if cyclic else frozenset()
        for name in component:
            value = variables[name]
            is_verbatim = name in raw_names or "$" not in value
            expanded[name] = value if is_verbatim else _substitute(value, expanded, keep)
    return {name: expanded[name] for name in variables}


def reference_cycles(variables: Mapping[str, str], raw: Collection[str] = ()) -> list[list[str]]:
    """The groups of variables that refer to each other in a circle, each sorted by name.

    GitLab rejects a job whose variables contain one, so the linter reports these as errors.
    """
    raw_names = frozenset(raw)
    pending = {k: v for k, v in variables.items() if k not in raw_names and "$" in v}
    graph = _graph(pending, raw_names)  # only values with references can be in a cycle
    cycles = [
        sorted(component)
        for component in _components(graph)
        if len(component) > 1 or component[0] in graph.get(component[0], ())
    ]
    return sorted(cycles)


def _substitute(text: str, values: Mapping[str, str], keep: frozenset[str]) -> str:
    """One pass over ``text``: inserted values are not scanned again, and names in ``keep``
    stay as written."""

    def replace(found: re.Match[str]) -> str:
        name = found[1] or found[2]
        if not name:
            return "$"
        return found[0] if name in keep else values.get(name, "")

    return _REFERENCE.sub(replace, text)


def _graph(variables: Mapping[str, str], raw: Collection[str]) -> dict[str, list[str]]:
    """Who refers to whom; raw variables refer to no one, whatever their text says."""
    raw_names = frozenset(raw)
    graph: dict[str, list[str]] = {}
    for name, value in variables.items():
        refs: dict[str, None] = {}
        if name not in raw_names and "$" in value:
            for found in _REFERENCE.finditer(value):
                ref = found[1] or found[2]
                if ref and ref in variables:
                    refs[ref] = None
        graph[name] = list(refs)
    return graph


def _components(graph: Mapping[str, list[str]]) -> list[list[str]]:
    """Strongly connected components, each after every component it refers to.

    Tarjan's algorithm, iterative so that a long chain of references cannot reach Python's
    recursion limit.
    """
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        work = [(root, iter(graph[root]))]
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(graph[child])))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component: list[str] = []
                    while not component or component[-1] != node:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                    components.append(component)
    return components
