"""``include:``: pull other files of the repository into one config, as GitLab does.

Every entry is read in order (a string, a mapping or a list of them), filtered by its
``rules``, expanded when it is a wildcard, loaded, interpolated with its ``inputs``, and has its
own includes expanded first. The results are deep-merged in order and the including file's own
keys go on top, so a project can override what it includes.

Only ``include:local`` can be resolved from a checkout. The other kinds (``project``,
``remote``, ``template``, ``component``, ``artifact``) are reported as errors naming what they
wanted, and the rest of the config is still merged, so one unsupported include does not hide
every other problem in the file.

GitLab counts every included file against one limit of 150 (``ci_max_includes``); a file that
includes itself, directly or through others, is reported as a loop instead of being merged
until the limit.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from ferrous.pipeline_config.deep_merge import copy_map, merge_into
from ferrous.pipeline_config.include_rules import include_applies
from ferrous.pipeline_config.inputs import InputsCall, apply_inputs, split_header
from ferrous.pipeline_config.problems import UNRESOLVED_INCLUDE, Position, Problems
from ferrous.pipeline_config.repo_files import RepoFiles
from ferrous.pipeline_config.variable_expansion import expand_existing
from ferrous.pipeline_config.yaml_source import YMap, YSeq, load_documents, position_of

MAX_INCLUDES = 150
INCLUDE_KINDS = ("local", "project", "remote", "template", "component", "artifact")
_EXTRA_KEYS: dict[str, frozenset[str]] = {
    "local": frozenset({"rules", "inputs"}),
    "project": frozenset({"file", "ref", "rules", "inputs"}),
    "remote": frozenset({"rules", "inputs", "integrity", "cache"}),
    "template": frozenset({"rules", "inputs"}),
    "component": frozenset({"rules", "inputs"}),
    "artifact": frozenset({"job", "rules", "inputs"}),
}
_YAML_SUFFIXES = (".yml", ".yaml")


@dataclass(slots=True)
class _Session:
    """State shared by every file of one merge: the include budget and parsed files."""

    repo: RepoFiles
    variables: Mapping[str, str]
    problems: Problems
    count: int = 0
    parsed: dict[str, list[Any]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Entry:
    kind: str
    location: Any
    path: str  # dotted path of the entry, e.g. "include[1]"
    pos: Position  # where the location is written
    spec: YMap | None  # the mapping form, None for a bare string


def expand_includes(
    content: YMap,
    source: str,
    repo: RepoFiles,
    variables: Mapping[str, str],
    problems: Problems,
) -> YMap:
    """``content`` with its includes merged in, without ``include``; inputs are not modified."""
    session = _Session(repo=repo, variables=variables, problems=problems)
    merged = _expand(session, content, (source,))
    return copy_map(merged) if merged is content else merged


def _expand(session: _Session, content: YMap, chain: tuple[str, ...]) -> YMap:
    """The merged content of one file; ``content`` itself when it includes nothing."""
    if "include" not in content:
        return content
    merged = YMap(pos=content.pos)
    for included in _included_files(session, content, chain):
        merge_into(merged, included)
    own = copy_map(content)
    del own["include"]
    merge_into(merged, own)
    return merged


def _included_files(session: _Session, content: YMap, chain: tuple[str, ...]) -> Iterator[YMap]:
    for entry in _entries(session, content):
        if entry.kind != "local":
            _unsupported(session.problems, entry)
            continue
        if not isinstance(entry.location, str):
            session.problems.error(
                f"{entry.path}.local" if entry.spec is not None else entry.path,
                f"Included file `{entry.location}` needs to be a string",
                entry.pos,
            )
            continue
        for path in _local_paths(session, entry):
            included = _load(session, entry, path, chain)
            if included is not None:
                yield included


def _entries(session: _Session, content: YMap) -> Iterator[_Entry]:
    raw = content["include"]
    items: list[tuple[Any, str, Position]]
    if isinstance(raw, YSeq):
        items = [(item, f"include[{index}]", raw.where(index)) for index, item in enumerate(raw)]
    elif isinstance(raw, str | YMap):
        items = [(raw, "include", content.where("include"))]
    else:
        session.problems.error(
            "include",
            "include must be a path, a mapping or a list of them",
            content.where("include"),
        )
        return
    for item, path, pos in items:
        entry = _entry(session, item, path, pos)
        if entry is not None:
            yield entry


def _entry(session: _Session, item: Any, path: str, pos: Position) -> _Entry | None:
    problems = session.problems
    if isinstance(item, str):
        location = expand_existing(item, session.variables)
        kind = "remote" if location.startswith(("http://", "https://")) else "local"
        return _Entry(kind=kind, location=location, path=path, pos=pos, spec=None)
    if not isinstance(item, YMap):
        problems.error(path, "an include entry must be a path or a mapping", pos)
        return None
    kinds = [kind for kind in INCLUDE_KINDS if kind in item]
    if len(kinds) != 1:
        subkeys = ", ".join(f"`{kind}`" for kind in INCLUDE_KINDS)
        problems.error(path, f"each include must use exactly one of: {subkeys}", item.pos)
        return None
    kind = kinds[0]
    for key in item:
        if key != kind and key not in _EXTRA_KEYS[kind]:
            problems.error(
                f"{path}.{key}", f"include:{kind} does not take `{key}`", item.where_key(key)
            )
    if "rules" in item and not include_applies(
        item["rules"],
        f"{path}.rules",
        item.where("rules"),
        session.repo,
        session.variables,
        problems,
    ):
        return None
    location = item[kind]
    if isinstance(location, str):
        location = expand_existing(location, session.variables)
    return _Entry(kind=kind, location=location, path=path, pos=item.where(kind), spec=item)


def _unsupported(problems: Problems, entry: _Entry) -> None:
    spec = entry.spec or YMap()
    what = f'include:{entry.kind} "{entry.location}"'
    if entry.kind == "project":
        files = spec.get("file")
        names = (
            ", ".join(f'"{name}"' for name in files) if isinstance(files, list) else f'"{files}"'
        )
        what += f" file {names}"
        if "ref" in spec:
            what += f' ref "{spec["ref"]}"'
    elif entry.kind == "artifact" and "job" in spec:
        what += f' of job "{spec["job"]}"'
    path = f"{entry.path}.{entry.kind}" if entry.spec is not None else entry.path
    problems.error(
        path,
        f"{what} is not supported yet: only include:local is resolved",
        entry.pos,
        code=UNRESOLVED_INCLUDE,
    )


def _local_paths(session: _Session, entry: _Entry) -> list[str]:
    # GitLab strips leading slashes: include paths are always relative to the repository root.
    # Normalising ("./a.yml" is "a.yml") lets the loop check recognise a file however spelled.
    path = str(entry.location).lstrip("/")
    path = posixpath.normpath(path) if path else path
    if "*" not in path:
        return [path]
    matches = session.repo.wildcard(path)
    if not matches:
        session.problems.error(
            f"{entry.path}.local" if entry.spec is not None else entry.path,
            f"include:local `{entry.location}` matches no files",
            entry.pos,
        )
    return matches


def _load(session: _Session, entry: _Entry, path: str, chain: tuple[str, ...]) -> YMap | None:
    problems = session.problems
    where_path = f"{entry.path}.local" if entry.spec is not None else entry.path
    if not PurePosixPath(path).name.lower().endswith(_YAML_SUFFIXES):
        problems.error(
            where_path, f"Included file `{path}` does not have YAML extension!", entry.pos
        )
        return None
    if path in chain:
        loop = " -> ".join((*chain, path))
        problems.error(where_path, f"include loop: {loop}", entry.pos)
        return None
    if session.count >= MAX_INCLUDES:
        problems.error(
            where_path, f"Maximum of {MAX_INCLUDES} nested includes are allowed!", entry.pos
        )
        return None
    session.count += 1
    documents = _documents(session, path)
    if documents is None:
        problems.error(where_path, f"Local file `{path}` does not exist!", entry.pos)
        return None
    if not documents:
        problems.error(where_path, f"Local file `{path}` is empty!", entry.pos)
        return None
    header, body = split_header(documents)
    body = apply_inputs(header, body, _inputs_call(session, entry), session.variables, problems)
    if not isinstance(body, YMap) or not body:
        kind = "empty" if body is None or body == {} else f"a {type(body).__name__}"
        problems.error(
            where_path,
            f"Included file `{path}` must hold a mapping of keys at top level (it is {kind})",
            entry.pos,
        )
        return None
    return _expand(session, body, (*chain, path))


def _documents(session: _Session, path: str) -> list[Any] | None:
    if path not in session.parsed:
        text = session.repo.read(path)
        if text is None:
            return None
        session.parsed[path] = load_documents(text, path, session.problems) if text.strip() else []
    return session.parsed[path]


def _inputs_call(session: _Session, entry: _Entry) -> InputsCall | None:
    if entry.spec is None or "inputs" not in entry.spec:
        return None
    values = entry.spec["inputs"]
    if not isinstance(values, YMap):
        session.problems.error(
            f"{entry.path}.inputs", "include:inputs must be a mapping", entry.spec.where("inputs")
        )
        return None
    return InputsCall(values=values, path=entry.path, pos=position_of(entry.spec), source=values)
