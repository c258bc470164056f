"""Job output: the raw log file of each job, and live lines on a console shared by all jobs.

Several jobs print at once, so the console only ever receives whole lines, each prefixed with
its job's name, under one lock: lines of two jobs never mix. Output arrives in big chunks
and is prefixed with one ``bytes.replace`` per chunk, never a Python loop per line, so a job
printing millions of lines costs little more than copying them.
"""

from __future__ import annotations

import os
import threading
from typing import BinaryIO

#: A line longer than this is cut into pieces rather than held back for ever.
MAX_PARTIAL_LINE = 1 << 16

_COLORS = (b"36", b"33", b"35", b"32", b"34", b"91", b"96", b"93", b"95", b"92", b"94")
_RESET = b"\x1b[0m"


def prefix_lines(data: bytes, prefix: bytes) -> tuple[bytes, bytes]:
    """Prefix every complete line of ``data``; return them and the unfinished last line."""
    cut = data.rfind(b"\n")
    if cut < 0:
        return b"", data
    return prefix + data[:cut].replace(b"\n", b"\n" + prefix) + b"\n", data[cut + 1 :]


def wants_color(stream: BinaryIO) -> bool:
    """Color on a terminal, unless NO_COLOR says otherwise; FORCE_COLOR forces it."""
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    try:
        return os.isatty(stream.fileno())
    except (OSError, ValueError):
        return False


class Console:
    """The one live output stream: whole lines only, one writer at a time.

    If the stream goes away (``ferrous run | head``), the console falls silent and the jobs go
    on: their logs are still written, and the run still ends with its summary and status.
    """

    def __init__(self, stream: BinaryIO, *, color: bool, name_width: int = 0) -> None:
        self._stream = stream
        self.broken = False
        self._lock = threading.Lock()
        self.color = color
        self.name_width = name_width
        self._palette: dict[str, bytes] = {}

    def prefix(self, name: str) -> bytes:
        """``name | `` padded to the widest job name, in the job's own color on a terminal."""
        label = name.ljust(self.name_width).encode("utf-8", "replace")
        if not self.color:
            return label + b" | "
        color = self._palette.setdefault(name, _COLORS[len(self._palette) % len(_COLORS)])
        return b"\x1b[" + color + b"m" + label + b" |" + _RESET + b" "

    def write(self, data: bytes) -> None:
        with self._lock:
            if self.broken:
                return
            try:
                self._stream.write(data)
                self._stream.flush()
            except OSError:  # a closed pipe or a full disk: the console is not the job
                self.broken = True

    def line(self, text: str, tone: str | None = None) -> None:
        """A message of the tool itself, not of a job; ``tone`` is an SGR code ("32")."""
        data = text.encode("utf-8", "replace")
        if tone and self.color:
            data = b"\x1b[" + tone.encode() + b"m" + data + _RESET
        self.write(data + b"\n")


class JobOutput:
    """The output of one job: raw bytes to its log file, prefixed lines to the console.

    Implements ``OutputSink``. ``note`` adds the runner's own messages (what GitLab's runner
    prints around the script: fetching sources, uploading artifacts, the job's result).
    """

    def __init__(self, console: Console, name: str, log: BinaryIO) -> None:
        self._console = console
        self._prefix = console.prefix(name)
        self._log = log
        self._partial = b""
        self._lock = threading.Lock()

    def write(self, data: bytes) -> None:
        with self._lock:
            self._log.write(data)
            if self._partial:
                data = self._partial + data
            lines, self._partial = prefix_lines(data, self._prefix)
            if len(self._partial) > MAX_PARTIAL_LINE:
                lines += self._prefix + self._partial + b"\n"
                self._partial = b""
        if lines:
            self._console.write(lines)

    def end_line(self) -> None:
        """Finish an unterminated last line, so that what follows starts on its own line."""
        with self._lock:
            partial, self._partial = self._partial, b""
            if partial:
                self._log.write(b"\n")
        if partial:
            self._console.write(self._prefix + partial + b"\n")

    def note(self, text: str) -> None:
        self.end_line()
        self.write(text.encode("utf-8", "replace") + b"\n")

    def close(self) -> None:
        self.end_line()
        self._log.close()
