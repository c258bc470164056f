"""Which workspace files ``artifacts:paths`` and ``cache:paths`` name.

GitLab's rules: paths are relative to the project directory (an absolute path inside it is
accepted); globs may use ``*``, ``?``, ``[...]``, ``{a,b}`` and ``**``; a path or glob that
names a directory takes everything below it; ``exclude`` patterns match files (not
recursively: ``dir/**`` excludes a folder's content); ``untracked`` adds the files git would
call untracked. A path that leads outside the project directory, directly or through a
symlinked folder, is refused; a path that matches nothing is a warning, never an error.

Both artifacts and caches select their files here; storing them is another module's job.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

from ferrous.pipeline_config.globs import compile_glob

_GLOB_CHARS = frozenset("*?[{")


class Selection(NamedTuple):
    files: list[str]  # relative "/" paths, sorted, no dups
    warnings: list[str]


def is_glob(pattern: str) -> bool:
    return any(ch in _GLOB_CHARS for ch in pattern)


def relative_pattern(pattern: str, workspace: Path) -> str | None:
    """The pattern relative to the workspace, or None when it leads outside of it."""
    text = pattern.replace("\\", "/")
    root = workspace.as_posix()
    if text.startswith("/"):
        if text == root or text.startswith(root + "/"):
            text = text[len(root) :]
        else:
            return None
    text = posixpath.normpath(text.lstrip("/") or ".")
    if text == ".." or text.startswith("../"):
        return None
    return "" if text == "." else text


class _Tree:
    """A lazily listed workspace, with a containment check cached per folder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._real_root = os.path.realpath(root)
        self._inside: dict[str, bool] = {}

    def inside(self, rel_dir: str) -> bool:
        """Whether a folder (relative) really lies in the workspace, symlinks resolved."""
        found = self._inside.get(rel_dir)
        if found is None:
            real = os.path.realpath(os.path.join(self.root, rel_dir))
            found = real == self._real_root or real.startswith(self._real_root + os.sep)
            self._inside[rel_dir] = found
        return found

    def walk(self, rel_dir: str) -> Iterable[tuple[str, bool]]:
        """Every entry below a folder: (relative path, is a real folder), symlinks not followed."""
        start = os.path.join(self.root, rel_dir) if rel_dir else str(self.root)
        prefix_len = len(str(self.root)) + 1
        for folder, dirs, files in os.walk(start):
            base = folder[prefix_len:].replace(os.sep, "/")
            base = base + "/" if base else ""
            for name in dirs:
                full = os.path.join(folder, name)
                yield base + name, not os.path.islink(full)
            for name in files:
                yield base + name, False


def _literal_prefix(pattern: str) -> str:
    """The folder part of a glob before its first wildcard: the only place to look."""
    parts: list[str] = []
    for part in pattern.split("/")[:-1]:
        if is_glob(part):
            break
        parts.append(part)
    return "/".join(parts)


def _expand(tree: _Tree, rel: str, out: set[str]) -> None:
    """Add a file, or everything below a folder."""
    full = tree.root / rel if rel else tree.root
    if full.is_dir() and not full.is_symlink():
        out.update(path for path, is_dir in tree.walk(rel) if not is_dir)
    else:
        out.add(rel)


def _matches(tree: _Tree, rel: str) -> set[str]:
    """The files one (relative, contained) path or glob names."""
    found: set[str] = set()
    if not is_glob(rel):
        if not rel or os.path.lexists(tree.root / rel):
            _expand(tree, rel, found)
        return found
    regex = compile_glob(rel)
    prefix = _literal_prefix(rel)
    if (tree.root / prefix).is_dir():
        for path, is_dir in tree.walk(prefix):
            if not regex.match(path):
                continue
            if is_dir:
                _expand(tree, path, found)
            else:
                found.add(path)
    return found


def select_files(
    workspace: Path,
    patterns: Iterable[str],
    *,
    exclude: Iterable[str] = (),
    untracked: Iterable[str] = (),
) -> Selection:
    """Resolve ``paths`` (and ``untracked`` files) minus ``exclude`` in a workspace."""
    tree = _Tree(workspace)
    selection = Selection([], [])
    chosen: set[str] = set(untracked)
    for pattern in patterns:
        rel = relative_pattern(pattern, workspace)
        if rel is None:
            selection.warnings.append(f"{pattern}: not in the project directory, ignored")
            continue
        found = _matches(tree, rel)
        if not found and (is_glob(rel) or not os.path.lexists(workspace / rel)):
            selection.warnings.append(f"{pattern}: no matching files")
        chosen |= found
    excluded = [compile_glob(p) for p in (relative_pattern(e, workspace) for e in exclude) if p]
    for path in sorted(chosen):
        if any(rx.match(path) for rx in excluded):
            continue
        if not tree.inside(posixpath.dirname(path)):
            selection.warnings.append(f"{path}: not in the project directory, ignored")
            continue
        selection.files.append(path)
    return selection
