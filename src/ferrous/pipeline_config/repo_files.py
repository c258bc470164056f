"""The repository as ``include:local`` and ``include:rules:exists`` see it.

GitLab reads included files from the commit's tree, always relative to the repository root
(a leading ``/`` is allowed and means the same). Here the tree is a checked-out folder, so every
path is also checked to stay inside it: an include must never read ``../../etc/passwd``.

Two pattern languages meet here, both GitLab's:

* ``include:local`` wildcards (``Repository#search_files_by_wildcard_path``): ``**`` matches
  anything, slashes included, and ``*`` anything but a slash; the whole path must match. So
  ``configs/*.yml`` is one folder, ``configs/**.yml`` that folder and every folder below it,
  and ``configs/**/*.yml`` only the folders below. Matches come in the tree's (byte) order.
* ``rules:exists`` globs, Ruby's ``File.fnmatch?`` as ``globs`` compiles them, except that a
  pattern without wildcards is looked up as an exact path, as GitLab does.
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
from pathlib import Path

from ferrous.pipeline_config.globs import compile_glob


class RepoFiles:
    """Read-only access to a checked-out repository, with the file list built once if needed."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._resolved_root = root.resolve()
        self._paths: list[str] | None = None
        self._texts: dict[str, str | None] = {}

    def read(self, path: str) -> str | None:
        """The text of a repository file, or None when it is missing or outside the repository."""
        if path not in self._texts:
            self._texts[path] = self._read(path)
        return self._texts[path]

    def texts(self) -> list[str]:
        """Every file text read so far."""
        return [text for text in self._texts.values() if text is not None]

    def _file(self, path: str) -> Path | None:
        target = (self.root / path).resolve()
        if not target.is_relative_to(self._resolved_root) or not target.is_file():
            return None
        return target

    def _read(self, path: str) -> str | None:
        target = self._file(path)
        if target is None:
            return None
        try:
            return target.read_bytes().decode("utf-8-sig")
        except (OSError, UnicodeDecodeError):
            return None

    def paths(self) -> list[str]:
        """Every file below the root (``.git`` aside) as a ``/`` path, in byte order like git.

        In a git checkout, the files git sees (tracked, and untracked but not ignored): a
        local ``node_modules`` or build folder is not part of the commit GitLab would look at.
        """
        if self._paths is None and (self.root / ".git").exists():
            self._paths = self._git_paths()
        if self._paths is None:
            found: list[str] = []
            for folder, dirs, files in os.walk(self.root):
                dirs[:] = [d for d in dirs if d != ".git"]
                relative = Path(folder).relative_to(self.root).as_posix()
                prefix = "" if relative == "." else relative + "/"
                found.extend(prefix + name for name in files)
            self._paths = sorted(found, key=lambda p: p.encode())
        return self._paths

    def _git_paths(self) -> list[str] | None:
        try:
            done = subprocess.run(
                ["git", "-C", str(self.root), "ls-files", "-z", "-co", "--exclude-standard"],
                capture_output=True,
                check=False,
                timeout=30,
            )
        except (OSError, subprocess.SubprocessError):
            return None
        if done.returncode != 0:
            return None
        names = {name for name in done.stdout.decode(errors="replace").split("\0") if name}
        present = [name for name in names if (self.root / name).is_file()]  # deleted, unstaged
        return sorted(present, key=lambda p: p.encode())

    def wildcard(self, pattern: str) -> list[str]:
        """Files an ``include:local`` wildcard names, in the order GitLab includes them."""
        regex = _wildcard_regex(pattern)
        return [path for path in self.paths() if regex.match(path)]

    def exists(self, pattern: str) -> bool:
        """Whether any file matches a ``rules:exists`` glob (an exact path when it has none)."""
        if not any(char in pattern for char in "*?[{"):
            return self._file(pattern) is not None
        regex = compile_glob(pattern)
        return any(regex.match(path) for path in self.paths())


@functools.lru_cache(maxsize=256)
def _wildcard_regex(pattern: str) -> re.Pattern[str]:
    escaped = re.escape(pattern)
    # re.escape turns "*" into "\*"; GitLab rewrites "**" first, then the single stars.
    escaped = escaped.replace(r"\*\*", "\0").replace(r"\*", "[^/]*?").replace("\0", ".*?")
    return re.compile(escaped + r"\Z", re.DOTALL)
