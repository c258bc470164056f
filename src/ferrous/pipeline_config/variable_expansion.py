"""``$VAR`` expansion where GitLab does it while merging: include paths, ``exists`` globs and
the ``expand_vars`` input function.

GitLab's ``ExpandVariables.expand_existing`` leaves a variable it does not know as written, so a
path with an unknown variable fails visibly ("`$DIR/ci.yml` does not exist") instead of turning
into a different path. ``$NAME``, ``${NAME}`` and ``%NAME%`` are the three spellings it knows.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_REFERENCE = re.compile(r"\$(?:\{(\w+)\}|(\w+))|%(\w+)%")


def expand_existing(text: str, variables: Mapping[str, str]) -> str:
    """Replace the variables ``variables`` defines; leave every other ``$NAME`` as written."""
    if "$" not in text and "%" not in text:
        return text

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2) or match.group(3)
        value = variables.get(name)
        return match.group(0) if value is None else value

    return _REFERENCE.sub(replace, text)
