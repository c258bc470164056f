"""The phases of one job attempt, as the agent that ran it measured them.

They exist for build traces (a span per phase under the job's span): where the minutes of a
slow job went, fetching the source or running its tests. The agent reports them with the
attempt's result; the attempt keeps them. They are a record, never a decision: nothing in
the build's state depends on them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ferrous.domain.errors import InvalidValue

#: What an agent measures, in order: workspace, source, artifacts and caches restored
#: (``prepare``), ``before_script`` + ``script``, ``after_script``, caches and artifacts
#: saved (``upload``).
PHASE_NAMES = ("prepare", "script", "after_script", "upload")
#: More than an agent ever sends: the rest of a longer report is refused, not stored.
MAX_PHASES = 10


@dataclass(frozen=True, slots=True, kw_only=True)
class Phase:
    name: str
    started_at: datetime  # aware, UTC
    finished_at: datetime

    def as_json(self) -> dict[str, str]:
        return {
            "name": self.name,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat(),
        }

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> Phase:
        return cls(
            name=str(value["name"]),
            started_at=datetime.fromisoformat(value["started_at"]),
            finished_at=datetime.fromisoformat(value["finished_at"]),
        )


def checked_phases(phases: Iterable[Phase]) -> tuple[Phase, ...]:
    """The phases if they can be a record of one attempt; InvalidValue otherwise."""
    found = tuple(phases)
    if len(found) > MAX_PHASES:
        raise InvalidValue(f"at most {MAX_PHASES} phases, not {len(found)}")
    for phase in found:
        if phase.name not in PHASE_NAMES:
            raise InvalidValue(f"unknown phase {phase.name!r}: one of {', '.join(PHASE_NAMES)}")
        if phase.started_at.tzinfo is None or phase.finished_at.tzinfo is None:
            raise InvalidValue(f"phase {phase.name!r}: times need a time zone")
        if phase.finished_at < phase.started_at:
            raise InvalidValue(f"phase {phase.name!r} finished before it started")
    return found
