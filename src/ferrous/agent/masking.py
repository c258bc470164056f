"""Secret values masked out of a job's log as it streams, before it leaves the agent.

A job's output reaches the server in chunks cut wherever a pipe read happened to end, so a
secret may arrive split across two (or ten) chunks. ``LogMasker`` gives the same bytes as
masking the whole log at once, whatever the cuts: it holds back only the shortest tail that
could still be the start of a secret (at most the longest pattern less one byte, and usually
nothing: a chunk that ends in a newline releases everything) and releases it with the next
chunk or at ``flush``. The live log is late by those few bytes, never by a line or a timer.

What is masked, for each value (GitLab's runner masks the raw value and its URL-encoded
forms; so do we):

- the value itself, as UTF-8;
- ``urllib.parse.quote(value, safe="")``, ``quote(value)`` (which keeps ``/``) and
  ``quote_plus(value)``: a token pasted into a clone URL or a query string;
- each line of a multi-line value (a PEM key printed piecemeal, or with ``\\r\\n`` endings).

Every byte of every occurrence is masked, and occurrences that overlap or touch become one
``[MASKED]``: two secrets sharing a few bytes ("…XYZW" and "XYZW…") never leave the second's
tail in the clear, and "secretsecret" does not tell how many times it was printed.

Not masked, on purpose: base64 and other encodings. The base64 of a secret depends on where it
starts inside the encoded data (three different texts), so masking the aligned form alone
would promise a protection it does not give; a job that transforms a secret can always leak
it. Masking guards against accidents; it is not a sandbox. Lower-case percent-escapes
(``%2f``) are not masked either: Python, curl and git write upper case, as RFC 3986 asks.

Values shorter than ``MIN_LENGTH`` (4) bytes are not masked: "1" or "yes" would turn every
log into noise while hiding nothing a guess would not find. They are counted (``too_short``)
so that the runner can say so in the log. The server should refuse secrets shorter than 8
characters in the first place, as GitLab does for masked variables; this floor is the last
line for values that got in some other way.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import NamedTuple
from urllib.parse import quote, quote_plus

MIN_LENGTH = 4
REPLACEMENT = b"[MASKED]"

#: Chunks at least this big are first checked with ``bytes.find`` for each pattern, which is
#: two to four times faster than the regex when (as nearly always) no secret is in them.
#: Below it, one regex search costs less than a find per pattern.
_PREFILTER_BYTES = 4096

#: Patterns are at least this long; their first bytes index them (``LogMasker._by_head``).
_HEAD = MIN_LENGTH


def mask_patterns(secrets: Iterable[str]) -> tuple[list[bytes], int]:
    """The byte patterns to mask for ``secrets``, longest first, and how many were too short."""
    patterns: set[bytes] = set()
    too_short = 0
    for value in secrets:
        if not value:
            continue
        if len(value.encode("utf-8")) < MIN_LENGTH:
            too_short += 1
            continue
        forms = {value, quote(value, safe=""), quote(value), quote_plus(value)}
        if "\n" in value:
            forms.update(line.rstrip("\r") for line in value.split("\n"))
        patterns.update(b for b in (f.encode("utf-8") for f in forms) if len(b) >= MIN_LENGTH)
    return sorted(patterns, key=lambda p: (-len(p), p)), too_short


class _State(NamedTuple):
    covered: int  # how many leading bytes of the held tail are already known to be secret
    in_run: bool  # the output so far ends with a [MASKED] that the held tail may extend


_FRESH = _State(0, False)


class LogMasker:
    """Masks secret values in a stream of log chunks; see the module docstring.

    Not thread-safe: one stream, one caller at a time (the log shipper calls it under its
    lock). ``feed`` and ``flush`` return the bytes that may be shipped now, already masked;
    concatenated, they equal ``mask`` of everything fed.
    """

    def __init__(self, secrets: Iterable[str], replacement: bytes = REPLACEMENT) -> None:
        self._patterns, self.too_short = mask_patterns(secrets)
        self._replacement = replacement
        self._held = b""
        self._state = _FRESH
        self._regex: re.Pattern[bytes] | None = None
        self._heads: re.Pattern[bytes] | None = None
        self._by_head: dict[bytes, list[bytes]] = {}
        self._short: frozenset[bytes] = frozenset()
        self._inner: frozenset[int] = frozenset()
        self._longest = 0
        if not self._patterns:
            return
        # Longest first: where several patterns match at one place, the longest is taken.
        self._regex = re.compile(b"|".join(re.escape(p) for p in self._patterns))
        self._longest = len(self._patterns[0])
        # The last byte of any proper prefix: a chunk ending in another byte holds nothing.
        self._inner = frozenset(byte for p in self._patterns for byte in p[:-1])
        # Proper prefixes shorter than a head, kept as a set; longer ones are found by their
        # head (a set of every prefix of a 3 KB PEM key would weigh megabytes).
        self._short = frozenset(p[:k] for p in self._patterns for k in range(1, min(_HEAD, len(p))))
        for pattern in self._patterns:
            if len(pattern) > _HEAD:
                self._by_head.setdefault(pattern[:_HEAD], []).append(pattern)
        if self._by_head:
            heads = b"|".join(re.escape(head) for head in self._by_head)
            self._heads = re.compile(b"(?=(?:" + heads + b"))")  # overlapping starts

    @property
    def active(self) -> bool:
        """Whether there is anything to mask (else ``feed`` passes chunks through)."""
        return self._regex is not None

    @property
    def longest(self) -> int:
        """The longest pattern's length: ``held`` never exceeds it less one."""
        return self._longest

    @property
    def held(self) -> int:
        """How many bytes are held back, waiting to see whether a secret goes on in them."""
        return len(self._held)

    def feed(self, chunk: bytes) -> bytes:
        """The masked bytes of ``chunk`` (and of what was held) that can be shipped now."""
        if self._regex is None:
            return chunk
        data = self._held + chunk if self._held else chunk
        out, self._held, self._state = self._scan(data, self._state, final=False)
        return out

    def flush(self) -> bytes:
        """The held-back tail, masked: the end of the stream (or a pause worth waiting for)."""
        if not self._held:
            self._state = _FRESH
            return b""
        out = self._scan(self._held, self._state, final=True)[0]
        self._held, self._state = b"", _FRESH
        return out

    def mask(self, data: bytes) -> bytes:
        """``data`` masked as a whole, apart from the stream (for one-off messages)."""
        if self._regex is None or not data:
            return data
        return self._scan(data, _FRESH, final=True)[0]

    def mask_text(self, text: str) -> str:
        """``mask`` for text: an error message, a URL about to be logged."""
        return self.mask(text.encode("utf-8")).decode("utf-8", "replace")

    def _scan(self, data: bytes, state: _State, *, final: bool) -> tuple[bytes, bytes, _State]:
        """Mask what is decided in ``data``; return it, the undecided tail and the new state.

        Bytes before the first place where the data ends inside a possible secret (an open
        start) are decided: every occurrence that covers them lies wholly in ``data``. From
        there on, bytes are held; a run of secret bytes that crosses that place is masked up
        to it, and the state tells the next scan how far the run goes and not to mask again.
        """
        opens = [] if final else self._open_starts(data)
        limit = opens[0] if opens else len(data)
        if limit == 0:  # all of it may begin a secret: nothing decided, nothing learned
            return b"", data, state
        covered, in_run = state
        pieces: list[bytes] = []
        done = 0
        for start, end in self._runs(data, covered):
            if start >= limit:
                break
            if start > done:
                pieces.append(data[done:start])
                in_run = False
            if not in_run:
                pieces.append(self._replacement)
                in_run = True
            if end > limit:
                return b"".join(pieces), data[limit:], _State(end - limit, True)
            done = end
        if done < limit:
            if not pieces and done == 0 and limit == len(data):
                return data, b"", _FRESH
            pieces.append(data[done:limit])
            in_run = False
        return b"".join(pieces), data[limit:], _State(0, in_run)

    def _runs(self, data: bytes, covered: int) -> Iterator[tuple[int, int]]:
        """The maximal runs of secret bytes in ``data``, in order, as (start, end)."""
        assert self._regex is not None
        run_start, run_end = (0, covered) if covered else (-1, -1)
        pos = self._first_hit(data)
        while pos < len(data):
            match = self._regex.search(data, pos)
            if match is None:
                break
            start, end = match.start(), self._extend(data, match.start(), match.end())
            if run_start >= 0 and start <= run_end:  # overlapping or touching: one run
                run_end = max(run_end, end)
            else:
                if run_start >= 0:
                    yield run_start, run_end
                run_start, run_end = start, end
            pos = end
        if run_start >= 0:
            yield run_start, run_end

    def _extend(self, data: bytes, start: int, end: int) -> int:
        """The end of the run that a match at ``start:end`` begins, overlapping ones included.

        The regex skips past a match; an occurrence starting inside it and ending beyond it
        (only possible within the longest pattern's length of its end) would be missed.
        """
        assert self._regex is not None
        at = max(start + 1, end - self._longest + 1)
        while at < end:  # one bounded search per step: C speed, not a call per byte
            match = self._regex.search(data, at, end + self._longest - 1)
            if match is None or match.start() >= end:
                break
            end = max(end, match.end())
            at = match.start() + 1
        return end

    def _first_hit(self, data: bytes) -> int:
        """Where the first pattern occurs (or ``len(data)``), cheaply for big chunks."""
        if len(data) < _PREFILTER_BYTES:
            return 0
        hits = [i for i in (data.find(p) for p in self._patterns) if i >= 0]
        # An incomplete occurrence at the end is not found here; it is an open start, which
        # the scan holds back whatever this says.
        return min(hits, default=len(data))

    def _open_starts(self, data: bytes) -> list[int]:
        """Positions, in order, where the rest of ``data`` is a proper prefix of a pattern."""
        if not data or data[-1] not in self._inner:
            return []
        size = len(data)
        starts: list[int] = []
        if self._heads is not None:  # the rest is at least a head long
            for head in self._heads.finditer(data, max(0, size - self._longest + 1)):
                at = head.start()
                rest = data[at:]
                candidates = self._by_head[data[at : at + _HEAD]]
                if any(len(p) > len(rest) and p.startswith(rest) for p in candidates):
                    starts.append(at)
        starts.extend(
            size - k for k in range(min(_HEAD - 1, size), 0, -1) if data[size - k :] in self._short
        )
        return starts
