"""What every object store checks while bytes stream: key shape, size limit and sha256.

The stores share these so that the three of them refuse the same things with the same errors,
which is what lets the contract tests run unchanged on each.
"""

from __future__ import annotations

import hashlib
import re

from ferrous.domain.errors import ChecksumMismatch, InvalidValue, TooLarge

#: largest piece a read yields, and the unit of local file IO
CHUNK_SIZE = 1024 * 1024
#: S3 refuses longer keys; the same limit everywhere keeps the backends interchangeable
MAX_KEY_BYTES = 1024
MAX_SEGMENT_BYTES = 255  # a file name on most file systems
#: names the local store gives its unfinished files; never part of a key
TEMP_PREFIX = ".tmp-"
_SHA256 = re.compile(r"[0-9a-f]{64}")


def check_key(key: str) -> str:
    """``key`` when it is a relative POSIX path that cannot leave the store's root.

    Refused (InvalidValue): empty, absolute, ``.``/``..`` or empty segments, backslashes, NUL,
    segments named like the local store's temporary files, and keys longer than S3 allows.
    """
    problem = _key_problem(key)
    if problem:
        raise InvalidValue(f"invalid object key {key!r}: {problem}")
    return key


def check_prefix(prefix: str) -> str:
    """``prefix`` when it is ``""`` or the start of a valid key (a trailing ``/`` allowed)."""
    if prefix:
        problem = _key_problem(prefix.removesuffix("/"))
        if problem:
            raise InvalidValue(f"invalid object key prefix {prefix!r}: {problem}")
    return prefix


def _key_problem(key: str) -> str | None:
    if not key:
        return "it is empty"
    if key.startswith("/"):
        return "it must be relative"
    if "\\" in key or "\x00" in key:
        return "backslashes and NUL are not allowed"
    if len(key.encode()) > MAX_KEY_BYTES:
        return f"longer than {MAX_KEY_BYTES} bytes"
    for segment in key.split("/"):
        if segment in ("", ".", ".."):
            return "empty, '.' and '..' segments are not allowed"
        if segment.startswith(TEMP_PREFIX):
            return f"segments starting with {TEMP_PREFIX!r} are reserved"
        if len(segment.encode()) > MAX_SEGMENT_BYTES:
            return f"a segment is longer than {MAX_SEGMENT_BYTES} bytes"
    return None


def check_range(start: int, end: int | None, sha256: str | None) -> None:
    if start < 0 or (end is not None and end < start):
        raise InvalidValue(f"invalid byte range [{start}, {end}): need 0 <= start <= end")
    if sha256 is not None and (start != 0 or end is not None):
        raise InvalidValue("a sha256 can only be checked on a whole read (start 0, no end)")


def normal_sha256(value: str | None) -> str | None:
    """``value`` in lowercase hex, or InvalidValue when it is not a sha256 at all."""
    if value is None:
        return None
    lowered = value.strip().lower()
    if not _SHA256.fullmatch(lowered):
        raise InvalidValue(f"not a sha256 (64 hex digits): {value!r}")
    return lowered


class Tally:
    """Size and sha256 of an upload as it streams, refusing it once past ``max_bytes``.

    ``count`` runs before the bytes are kept anywhere, so an oversized upload stops at the
    first chunk over the limit; ``hash`` may run in a worker thread (hashlib releases the GIL).
    """

    def __init__(self, *, sha256: str | None = None, max_bytes: int | None = None) -> None:
        self.expected = normal_sha256(sha256)
        self.max_bytes = max_bytes
        self.size = 0
        self._digest = hashlib.sha256()

    def count(self, size: int) -> None:
        self.size += size
        if self.max_bytes is not None and self.size > self.max_bytes:
            raise TooLarge(f"the data is larger than the limit of {self.max_bytes} bytes")

    def hash(self, data: bytes | bytearray | memoryview) -> None:
        self._digest.update(data)

    def add(self, chunk: bytes | bytearray | memoryview) -> None:
        self.count(len(chunk))
        self.hash(chunk)

    @property
    def hexdigest(self) -> str:
        return self._digest.hexdigest()

    def verify(self) -> str:
        """The digest of everything hashed; ChecksumMismatch when it is not the one announced."""
        actual = self.hexdigest
        if self.expected is not None and actual != self.expected:
            raise ChecksumMismatch(
                f"the data hashes to sha256 {actual}, but {self.expected} was announced"
            )
        return actual
