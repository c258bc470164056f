"""Domain events: facts in the past tense that aggregates record and the outbox publishes.

Events are plain data with a stable ``kind`` (the class name) and JSON-able fields, because
they cross process boundaries through the broker and are stored in the outbox table.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar


@dataclass(frozen=True, kw_only=True, slots=True)
class Event:
    registry: ClassVar[dict[str, type[Event]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super(Event, cls).__init_subclass__(
            **kwargs
        )  # slots=True remakes the class: no bare super()
        Event.registry[cls.__name__] = cls

    @property
    def kind(self) -> str:
        """The event's type name (``name`` is a field of several events)."""
        return type(self).__name__

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_json(name: str, data: dict[str, Any]) -> Event:
        cls = Event.registry[name]
        kinds = {f.name: str(f.type) for f in fields(cls)}
        return cls(
            **{
                key: tuple(value)  # JSON has no tuples
                if isinstance(value, list) and kinds[key].startswith("tuple")
                else value
                for key, value in data.items()
                if key in kinds
            }
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class ProjectCreated(Event):
    project_id: str
    name: str


@dataclass(frozen=True, kw_only=True, slots=True)
class PipelineCreated(Event):
    pipeline_id: str
    project_id: str
    name: str


@dataclass(frozen=True, kw_only=True, slots=True)
class PipelineEnabled(Event):
    pipeline_id: str


@dataclass(frozen=True, kw_only=True, slots=True)
class PipelineDisabled(Event):
    pipeline_id: str


@dataclass(frozen=True, kw_only=True, slots=True)
class BuildCreated(Event):
    build_id: str
    project_id: str
    pipeline_id: str
    number: int
    ref: str
    sha: str
    status: str


@dataclass(frozen=True, kw_only=True, slots=True)
class BuildAutoCanceled(Event):
    """A newer build of the same ref made these jobs of an older build redundant."""

    build_id: str
    canceled_by: str  # the newer build's id
    jobs: tuple[str, ...]  # names of the jobs canceled


@dataclass(frozen=True, kw_only=True, slots=True)
class BuildStarted(Event):
    build_id: str


@dataclass(frozen=True, kw_only=True, slots=True)
class BuildCompleted(Event):
    build_id: str
    status: str


@dataclass(frozen=True, kw_only=True, slots=True)
class JobQueued(Event):
    build_id: str
    job_id: str
    name: str
    tags: tuple[str, ...]


@dataclass(frozen=True, kw_only=True, slots=True)
class JobStarted(Event):
    build_id: str
    job_id: str
    agent_id: str
    attempt: int


@dataclass(frozen=True, kw_only=True, slots=True)
class JobCompleted(Event):
    build_id: str
    job_id: str
    name: str
    status: str
    attempt: int
    exit_code: int | None
    failure_reason: str | None


@dataclass(frozen=True, kw_only=True, slots=True)
class JobCancelRequested(Event):
    """A running job was canceled; its agent learns it from the next heartbeat reply."""

    build_id: str
    job_id: str
    agent_id: str | None


@dataclass(frozen=True, kw_only=True, slots=True)
class ScheduleCreated(Event):
    schedule_id: str
    project_id: str
    pipeline_id: str
    next_run_at: str | None  # ISO 8601, UTC; None: inactive


@dataclass(frozen=True, kw_only=True, slots=True)
class ScheduleUpdated(Event):
    """Its cron, time zone, ref, variables, description or active flag changed."""

    schedule_id: str
    next_run_at: str | None


@dataclass(frozen=True, kw_only=True, slots=True)
class ScheduleDeleted(Event):
    schedule_id: str


@dataclass(frozen=True, kw_only=True, slots=True)
class AgentRegistered(Event):
    agent_id: str
    name: str


@dataclass(frozen=True, kw_only=True, slots=True)
class AgentDisconnected(Event):
    agent_id: str
    reason: str
