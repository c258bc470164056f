"""Domain events (registry and JSON round trip) and identifiers (UUIDv7, time-ordered)."""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Any
from uuid import UUID

import pytest

from ferrous.domain import events as ev
from ferrous.domain import ids
from ferrous.domain.events import Event, JobQueued

EVENT_CLASSES = [
    ev.ProjectCreated,
    ev.PipelineCreated,
    ev.PipelineEnabled,
    ev.PipelineDisabled,
    ev.BuildCreated,
    ev.BuildAutoCanceled,
    ev.BuildStarted,
    ev.BuildCompleted,
    ev.JobQueued,
    ev.JobStarted,
    ev.JobCompleted,
    ev.JobCancelRequested,
    ev.ScheduleCreated,
    ev.ScheduleUpdated,
    ev.ScheduleDeleted,
    ev.AgentRegistered,
    ev.AgentDisconnected,
]

#: A sample value per field annotation (annotations are strings: `from __future__`).
SAMPLES: dict[str, Any] = {
    "int": 3,
    "str | None": None,
    "int | None": 137,
    "tuple[str, ...]": ("gpu", "linux"),
}


def sample(cls: type[Event]) -> Event:
    values = {}
    for f in dataclasses.fields(cls):
        assert f.type == "str" or f.type in SAMPLES, f"no sample for {cls.__name__}.{f.name}"
        values[f.name] = f"{f.name}-1" if f.type == "str" else SAMPLES[str(f.type)]
    return cls(**values)


def test_every_event_class_is_registered_under_its_class_name():
    registered = {
        name: cls for name, cls in Event.registry.items() if cls.__module__ == ev.__name__
    }
    assert registered == {cls.__name__: cls for cls in EVENT_CLASSES}


@pytest.mark.parametrize("cls", EVENT_CLASSES, ids=lambda cls: cls.__name__)
def test_to_json_and_from_json_round_trip(cls):
    event = sample(cls)
    data = event.to_json()
    assert set(data) == {f.name for f in dataclasses.fields(cls)}
    assert Event.from_json(cls.__name__, data) == event
    assert type(Event.from_json(cls.__name__, data)) is cls


def _through_json(event: Event) -> Event:
    return Event.from_json(type(event).__name__, json.loads(json.dumps(event.to_json())))


@pytest.mark.parametrize(
    "cls", [cls for cls in EVENT_CLASSES if cls is not JobQueued], ids=lambda cls: cls.__name__
)
def test_events_survive_the_outbox_json(cls):
    """What the outbox stores and the relay reads back is the same event."""
    assert _through_json(sample(cls)) == sample(cls)


def test_job_queued_survives_the_outbox_json():
    event = JobQueued(build_id="b", job_id="j", name="test", tags=("gpu",))
    assert _through_json(event) == event


def test_kind_is_the_class_name_even_for_events_with_a_name_field():
    event = JobQueued(build_id="b", job_id="j", name="unit tests", tags=())
    assert (event.kind, event.name) == ("JobQueued", "unit tests")
    assert ev.BuildStarted(build_id="b").kind == "BuildStarted"


def test_from_json_ignores_fields_it_does_not_know():
    """A newer server may add fields; an older consumer must still read the event."""
    event = Event.from_json("BuildCompleted", {"build_id": "b", "status": "success", "new": 1})
    assert event == ev.BuildCompleted(build_id="b", status="success")


def test_from_json_of_an_unknown_event_fails():
    with pytest.raises(KeyError):
        Event.from_json("NoSuchEvent", {})


def test_events_are_immutable():
    event = ev.BuildStarted(build_id="b")
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.build_id = "c"  # type: ignore[misc]  # the point of the test


# --- ids ----------------------------------------------------------------------------------


def test_new_id_is_a_canonical_uuid_version_7():
    value = ids.new_id()
    parsed = UUID(value)
    assert str(parsed) == value  # lowercase, hyphenated
    assert parsed.version == 7
    assert parsed.variant == "specified in RFC 4122"


def test_new_id_starts_with_the_unix_milliseconds():
    before = time.time_ns() // 1_000_000
    value = ids.new_id()
    after = time.time_ns() // 1_000_000
    assert before <= UUID(value).int >> 80 <= after


def test_ids_sort_by_creation_time(monkeypatch):
    clock = iter(range(1_700_000_000_000, 1_700_000_000_050))
    monkeypatch.setattr(ids.time, "time_ns", lambda: next(clock) * 1_000_000)
    made = [ids.new_id() for _ in range(50)]
    assert sorted(made) == made
    assert sorted(made, key=UUID) == made


def test_ids_made_over_time_sort_in_that_order():
    made = []
    for _ in range(5):
        made.append(ids.new_id())
        time.sleep(0.002)
    assert sorted(made) == made


def test_ids_are_unique_within_one_millisecond(monkeypatch):
    monkeypatch.setattr(ids.time, "time_ns", lambda: 1_700_000_000_000 * 1_000_000)
    made = {ids.new_id() for _ in range(2000)}
    assert len(made) == 2000
    assert {UUID(value).int >> 80 for value in made} == {1_700_000_000_000}
    assert {UUID(value).version for value in made} == {7}
