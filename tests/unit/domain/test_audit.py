"""Audit entries: time-ordered ids, caller-given text cut to size, and the filter's rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest

from ferrous.domain.audit import AuditEntry, AuditFilter

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_ids_are_new_and_text_is_cut() -> None:
    first = AuditEntry.create(at=T0, action="POST /api/v1/projects", result=201)
    second = AuditEntry.create(
        at=T0,
        action="POST /" + "a" * 500,
        result=401,
        actor_kind="user",
        actor_name="x" * 300,
        target={f"k{n}": "v" * 300 for n in range(12)},
        request_id="r" * 200,
    )
    assert first.id != second.id
    assert UUID(first.id).version == 7  # time-ordered across milliseconds
    assert first.anonymous
    assert not second.anonymous
    assert len(second.action) == 300
    assert second.actor_name == "x" * 255
    assert len(second.target) == 10
    assert set(second.target.values()) == {"v" * 255}
    assert second.request_id == "r" * 128


def test_a_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        AuditEntry.create(at=datetime(2026, 3, 1), action="POST /x", result=200)


def test_the_filter_rule() -> None:
    entry = AuditEntry.create(
        at=T0,
        action="DELETE /api/v1/schedules/{schedule_id}",
        result=204,
        actor_kind="user",
        actor_id="u-1",
        actor_name="alice",
    )
    assert AuditFilter().matches(entry)
    assert AuditFilter(actor="alice").matches(entry)
    assert AuditFilter(actor="u-1").matches(entry)
    assert not AuditFilter(actor="bob").matches(entry)
    assert AuditFilter(action_prefix="DELETE ").matches(entry)
    assert not AuditFilter(action_prefix="POST ").matches(entry)
    assert AuditFilter(since=T0, until=T0 + timedelta(seconds=1)).matches(entry)
    assert not AuditFilter(until=T0).matches(entry)  # until is exclusive
    assert not AuditFilter(since=T0 + timedelta(microseconds=1)).matches(entry)
    assert AuditFilter(result=204).matches(entry)
    assert not AuditFilter(result=200).matches(entry)
