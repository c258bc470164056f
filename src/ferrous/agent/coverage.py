"""A job's test coverage, read from its output by its ``coverage:`` regex, as GitLab does.

GitLab writes the regex between slashes (``/Code coverage: \\d+(?:\\.\\d+)?/``) and applies it
to every line of the job's log; the last line that matches wins. The value is the regex's
first capture group when it has one, else the whole match, and the coverage is the first
number in it (``87.5`` from ``TOTAL   812   93   87.5%``).

The scan sees the log as it is shipped, secrets masked (``masking.LogMasker`` over the same
bytes): a capture can never carry a secret to the server. Python's ``re`` has no time limit,
so a careless regex (``(a+)+$``) could take for ever on a long line: lines longer than
``MAX_LINE`` (4 KiB, far more than any coverage summary) are skipped.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable

from ferrous.agent.masking import LogMasker

#: Longer lines are not scanned (see the module docstring).
MAX_LINE = 4096

_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def compile_coverage(pattern: str) -> re.Pattern[str]:
    """The regex of a ``coverage:`` value; raises ``re.error`` for a bad one.

    The slashes GitLab writes around it are not part of it; a value without them is taken
    as it is.
    """
    text = pattern.strip()
    if len(text) >= 2 and text.startswith("/") and text.endswith("/"):
        text = text[1:-1]
    return re.compile(text)


def coverage_of(regex: re.Pattern[str], line: str) -> float | None:
    """The coverage one line gives, or None when it does not match (or holds no number)."""
    match = regex.search(line)
    if match is None:
        return None
    text = match.group(1) if regex.groups and match.group(1) is not None else match.group(0)
    number = _NUMBER.search(text)
    return float(number.group(0)) if number else None


class CoverageScanner:
    """Fed a job's raw output in any chunks (from any thread); ``value`` is the coverage of
    the last matching line so far (a last line without a newline counts from ``finish``)."""

    def __init__(self, regex: re.Pattern[str], mask: Iterable[str] = ()) -> None:
        self._regex = regex
        self._masker = LogMasker(mask)
        self._lock = threading.Lock()
        self._partial = b""
        self._too_long = False  # the line in progress is over MAX_LINE: skip to its end
        self.value: float | None = None

    def feed(self, data: bytes) -> None:
        with self._lock:
            self._scan(self._masker.feed(data) if self._masker.active else data)

    def finish(self) -> float | None:
        """The last line counts even without its newline; returns ``value``."""
        with self._lock:
            rest = self._masker.flush() if self._masker.active else b""
            self._scan(rest + b"\n")
            return self.value

    def _scan(self, data: bytes) -> None:
        lines = data.split(b"\n")
        last = lines.pop()
        for piece in lines:
            line = self._partial + piece if self._partial else piece
            self._partial = b""
            if self._too_long:
                self._too_long = False
            elif len(line) <= MAX_LINE:
                self._check(line)
        if self._too_long:
            return
        if len(self._partial) + len(last) > MAX_LINE:
            self._partial, self._too_long = b"", True
        else:
            self._partial += last

    def _check(self, line: bytes) -> None:
        found = coverage_of(self._regex, line.rstrip(b"\r").decode("utf-8", "replace"))
        if found is not None:
            self.value = found
