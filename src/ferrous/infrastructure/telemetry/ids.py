"""Trace and span ids that every server derives alike from a build's id.

A build's trace is drawn by whichever server finishes it, perhaps again after a retry; with
its trace id taken from the build id (a UUID is 128 bits, as a trace id is) every server, log
line and agent can name that trace without asking anyone, and with its span ids hashed from
their place in the tree a trace drawn twice names its spans the same way. The SDK asks a
provider's ``IdGenerator`` for ids; ``BuildTraceIds`` answers the ids set for the span about to
start (``next_ids``), and random ones otherwise (the HTTP requests' spans).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from uuid import UUID

from opentelemetry.sdk.trace.id_generator import RandomIdGenerator

_NEXT: ContextVar[tuple[int, int] | None] = ContextVar("ferrous_next_span_ids", default=None)


def build_trace_id(build_id: str) -> int:
    """The trace id of a build: its UUID's 128 bits (a hash for an id that is no UUID)."""
    try:
        value = UUID(build_id).int
    except ValueError:
        value = int.from_bytes(hashlib.sha256(build_id.encode()).digest()[:16], "big")
    return value or 1  # 0 is the invalid trace id


def span_id_for(trace_id: int, path: str) -> int:
    """A span id from the span's place in its trace (``stage test/job unit:2``)."""
    digest = hashlib.sha256(f"{trace_id:032x}/{path}".encode()).digest()
    return int.from_bytes(digest[:8], "big") or 1  # 0 is the invalid span id


@contextmanager
def next_ids(trace_id: int, span_id: int) -> Iterator[None]:
    """The span started in this block gets these ids (its trace id only if it is a root)."""
    token = _NEXT.set((trace_id, span_id))
    try:
        yield
    finally:
        _NEXT.reset(token)


class BuildTraceIds(RandomIdGenerator):
    """Random ids, except for a span started under ``next_ids``."""

    def generate_span_id(self) -> int:
        chosen = _NEXT.get()
        return chosen[1] if chosen is not None else super().generate_span_id()

    def generate_trace_id(self) -> int:
        chosen = _NEXT.get()
        return chosen[0] if chosen is not None else super().generate_trace_id()

    def is_trace_id_random(self) -> bool:
        return _NEXT.get() is None
