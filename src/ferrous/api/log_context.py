"""The ids a request's log lines carry: its request id, and the agent, build and job it is
about once they are known.

They live in structlog's contextvars (``merge_contextvars`` adds them to every line). A
request's bindings must not outlive it: under an ASGI server each request runs in a task of
its own, whose context dies with it, but an app called in the caller's task (tests, a
loopback transport) shares that task's context. ``request_log_context`` therefore puts the
context back as it found it when the request ends.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import structlog


@contextmanager
def request_log_context(request_id: str) -> Iterator[None]:
    """``request_id`` bound for the request; whatever the request bound is dropped after."""
    before = structlog.contextvars.get_contextvars()
    structlog.contextvars.bind_contextvars(request_id=request_id)
    try:
        yield
    finally:
        structlog.contextvars.clear_contextvars()
        if before:
            structlog.contextvars.bind_contextvars(**before)


def bind_log_ids(**ids: str | None) -> None:
    """Bind the ids that are known (``agent_id=...``) until the request ends."""
    known = {name: value for name, value in ids.items() if value is not None}
    if known:
        structlog.contextvars.bind_contextvars(**known)
