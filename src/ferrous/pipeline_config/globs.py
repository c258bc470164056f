"""File globs as GitLab matches them in ``rules:changes`` and ``rules:exists``.

GitLab uses Ruby's ``File.fnmatch?`` with ``FNM_PATHNAME | FNM_DOTMATCH | FNM_EXTGLOB``: ``*``
stays within a directory, ``**/`` spans directories, dotfiles match, and ``{a,b}`` braces
expand. Python's ``fnmatch`` lets ``*`` cross ``/``, so patterns are compiled here instead.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache


def _brace_alternatives(body: str) -> list[str]:
    parts: list[str] = []
    depth = 0
    current = ""
    for ch in body:
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
            continue
        depth += ch == "{"
        depth -= ch == "}"
        current += ch
    parts.append(current)
    return parts


def _translate(pattern: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif ch == "*":
            out.append("[^/]*")
            i += 1
        elif ch == "?":
            out.append("[^/]")
            i += 1
        elif ch == "[":
            end = pattern.find("]", i + 1)
            if end == -1:
                out.append(re.escape(ch))
                i += 1
            else:
                body = pattern[i + 1 : end].replace("\\", "\\\\")
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append(f"[{body}]")
                i = end + 1
        elif ch == "{":
            depth, end = 0, -1
            for j in range(i, len(pattern)):
                depth += pattern[j] == "{"
                depth -= pattern[j] == "}"
                if depth == 0:
                    end = j
                    break
            if end == -1:
                out.append(re.escape(ch))
                i += 1
            else:
                options = _brace_alternatives(pattern[i + 1 : end])
                out.append("(?:" + "|".join(_translate(o) for o in options) + ")")
                i = end + 1
        else:
            out.append(re.escape(ch))
            i += 1
    return "".join(out)


@lru_cache(maxsize=1024)
def compile_glob(pattern: str) -> re.Pattern[str]:
    return re.compile(_translate(pattern.lstrip("/")) + r"\Z", re.DOTALL)


def glob_matches(pattern: str, path: str) -> bool:
    return compile_glob(pattern).match(path.lstrip("/")) is not None


def any_match(patterns: Iterable[str], paths: Iterable[str]) -> bool:
    compiled = [compile_glob(p) for p in patterns]
    return any(rx.match(path.lstrip("/")) for path in paths for rx in compiled)
