"""The build tracer port: where the trace of a finished build goes.

A build's trace is drawn after the fact, from the times the database kept: the spans of a
build that ran for an hour on three machines cannot be held open in one process. So the
application hands over a finished tree of ``TraceSpan`` (each with its own start and end) and
the adapter replays it into its tracing system (``infrastructure.telemetry``: OpenTelemetry).
Without an exporter configured the tracer is ``NoBuildTracer``, whose ``enabled`` is False:
then nothing is even read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

#: what an attribute may hold (OpenTelemetry's scalar attribute values)
AttributeValue = str | bool | int | float


@dataclass(frozen=True, slots=True, kw_only=True)
class TraceSpan:
    """One span of a build's trace, finished: a build, a stage, a job attempt or a phase."""

    name: str
    started_at: datetime
    finished_at: datetime
    attributes: Mapping[str, AttributeValue]
    kind: str = "internal"  # or "server": the build's own span (the pipeline run)
    #: why it failed (the span's error status); None: it did not fail
    error: str | None = None
    children: tuple[TraceSpan, ...] = ()

    def walk(self) -> list[TraceSpan]:
        """This span and all below it, parents before their children."""
        found = [self]
        for child in self.children:
            found.extend(child.walk())
        return found


class BuildTracer(Protocol):
    """Emits builds' traces. ``export`` is called once each time a build finishes, on the
    server that finished it, from the event loop: it must not block (hand the spans to a
    background exporter)."""

    @property
    def enabled(self) -> bool:
        """False: traces go nowhere, so the caller need not read the build at all."""
        ...

    def export(self, build_id: str, root: TraceSpan) -> None:
        """The build's trace, ``root`` being the build's span. Its trace id is derived from
        ``build_id``, so every server (and a build finished again after a retry) names the
        same trace."""
        ...


class NoBuildTracer:
    """Traces off: costs nothing."""

    @property
    def enabled(self) -> bool:
        return False

    def export(self, build_id: str, root: TraceSpan) -> None:
        pass
