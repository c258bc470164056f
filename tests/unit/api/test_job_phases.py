"""The phases an agent reports with ``complete``: optional, known names only, at most ten,
none finishing before it starts."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from ferrous.api.schemas.agents import JobResult

START, END = "2025-01-31T12:00:00Z", "2025-01-31T12:00:05+00:00"


def result(*phases: dict[str, Any]) -> JobResult:
    return JobResult.model_validate({"attempt": 1, "exit_code": 0, "phases": list(phases)})


def test_phases_are_optional_and_read_in_utc() -> None:
    assert JobResult.model_validate({"attempt": 1, "exit_code": 0}).phases == []
    [phase] = result({"name": "script", "started_at": START, "finished_at": END}).phases
    assert phase.name == "script"
    assert (phase.finished_at - phase.started_at).total_seconds() == 5
    assert phase.started_at.utcoffset() is not None


@pytest.mark.parametrize(
    "phases",
    [
        [{"name": "coffee", "started_at": START, "finished_at": END}],
        [{"name": "script", "started_at": END, "finished_at": START}],
        [{"name": "script", "started_at": START}],
        [{"name": "script", "started_at": START, "finished_at": END}] * 11,
    ],
)
def test_bad_phases_are_refused(phases: list[dict[str, Any]]) -> None:
    with pytest.raises(ValidationError):
        result(*phases)
