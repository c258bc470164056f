"""The audit log's adapters (SQLite, PostgreSQL, memory): the same order, filters and pages.

Entries come back as they went in (the target's parameters as a dict, times in UTC),
newest first, filtered by actor id or name, action prefix (``%`` and ``_`` are plain
characters), time range and status, and paged with cursors that neither skip nor repeat.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from ferrous.application.guard_ports import AuditLog
from ferrous.domain.audit import AuditEntry, AuditFilter
from ferrous.domain.errors import NotFound
from ferrous.infrastructure.memory import InMemoryAuditLog
from ferrous.infrastructure.sql.audit_log import SqlAuditLog
from tests.integration.sql.conftest import Storage

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def audit_log(storage: Storage) -> AuditLog:
    if storage.engine is None:
        return InMemoryAuditLog()
    return SqlAuditLog(storage.engine)


def entry(minute: int, action: str, result: int = 201, **fields: object) -> AuditEntry:
    return AuditEntry.create(
        at=T0 + timedelta(minutes=minute), action=action, result=result, **fields
    )  # type: ignore[arg-type]


async def record_history(audit_log: AuditLog) -> list[AuditEntry]:
    history = [
        entry(0, "POST /api/v1/auth/login", 401, actor_kind="user", actor_name="alice"),
        entry(1, "POST /api/v1/auth/login", 200, actor_kind="user", actor_name="alice"),
        entry(
            2,
            "POST /api/v1/projects/{project}/builds",
            target={"project": "demo"},
            actor_kind="user",
            actor_id="u-1",
            actor_name="alice",
            role="developer",
            source_ip="192.0.2.1",
            request_id="r-1",
        ),
        entry(3, "DELETE /api/v1/schedules/{schedule_id}", 204, target={"schedule_id": "s-9"}),
        entry(
            4,
            "POST /api/v1/hooks/{forge}/{project}",
            401,
            actor_kind="webhook",
            actor_name="github",
        ),
        entry(5, "POST /api/v1/agent/register", 201, source_ip="2001:db8::7"),
    ]
    for item in reversed(history):  # stored out of order: the order is the adapters' doing
        await audit_log.record(item)
    return history


async def test_entries_come_back_newest_first_as_they_went_in(audit_log: AuditLog) -> None:
    history = await record_history(audit_log)
    page = await audit_log.query(AuditFilter())
    assert page.items == history[::-1]
    assert page.next_cursor is None
    build = page.items[3]
    assert build.target == {"project": "demo"}
    assert build.at == T0 + timedelta(minutes=2)
    assert build.at.tzinfo is not None
    assert build.at.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("filters", "minutes"),
    [
        (AuditFilter(actor="alice"), [2, 1, 0]),
        (AuditFilter(actor="u-1"), [2]),
        (AuditFilter(actor="github"), [4]),
        (AuditFilter(actor="nobody"), []),
        (AuditFilter(action_prefix="POST /api/v1/auth/"), [1, 0]),
        (AuditFilter(action_prefix="DELETE "), [3]),
        (AuditFilter(action_prefix="POST /api/v1/%"), []),  # no wildcards
        (AuditFilter(action_prefix="POST /api/v1/agent_"), []),
        (AuditFilter(result=401), [4, 0]),
        (AuditFilter(since=T0 + timedelta(minutes=4)), [5, 4]),
        (AuditFilter(until=T0 + timedelta(minutes=1)), [0]),
        (
            AuditFilter(since=T0 + timedelta(minutes=1), until=T0 + timedelta(minutes=4)),
            [3, 2, 1],
        ),
        (AuditFilter(actor="alice", result=200, action_prefix="POST "), [1]),
    ],
)
async def test_filters(audit_log: AuditLog, filters: AuditFilter, minutes: list[int]) -> None:
    await record_history(audit_log)
    found = (await audit_log.query(filters)).items
    assert [int((e.at - T0).total_seconds() // 60) for e in found] == minutes
    assert all(filters.matches(e) for e in found)  # the SQL repeats the domain's rule


async def test_pages_neither_skip_nor_repeat(audit_log: AuditLog) -> None:
    same_moment = [entry(7, f"POST /api/v1/things/{n}") for n in range(5)]  # ties on `at`
    history = [*await record_history(audit_log), *same_moment]
    for item in same_moment:
        await audit_log.record(item)
    seen: list[AuditEntry] = []
    cursor = None
    pages = 0
    while True:
        page = await audit_log.query(AuditFilter(), cursor=cursor, limit=4)
        seen += page.items
        pages += 1
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert pages == 3
    assert sorted(e.id for e in seen) == sorted(e.id for e in history)
    assert [(e.at, e.id) for e in seen] == sorted(((e.at, e.id) for e in seen), reverse=True)
    filtered = await audit_log.query(AuditFilter(action_prefix="POST /api/v1/things/"), limit=2)
    rest = await audit_log.query(
        AuditFilter(action_prefix="POST /api/v1/things/"), cursor=filtered.next_cursor, limit=10
    )
    assert len(filtered.items) + len(rest.items) == 5
    assert rest.next_cursor is None


async def test_a_foreign_cursor_is_not_found(audit_log: AuditLog) -> None:
    with pytest.raises(NotFound):
        await audit_log.query(AuditFilter(), cursor="not-a-cursor")


async def test_caller_given_text_is_cut_to_the_columns(audit_log: AuditLog) -> None:
    long = entry(
        0,
        "POST /" + "x" * 400,
        actor_kind="user",
        actor_name="n" * 1000,
        target={f"k{n}": "v" * 1000 for n in range(20)},
        source_ip="1" * 100,
    )
    await audit_log.record(long)
    [stored] = (await audit_log.query(AuditFilter())).items
    assert len(stored.action) == 300
    assert stored.actor_name == "n" * 255
    assert len(stored.target) == 10
    assert all(len(value) == 255 for value in stored.target.values())
    assert stored.source_ip is not None
    assert len(stored.source_ip) == 64


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_rows_are_plain_and_indexed(storage: Storage, audit_log: AuditLog) -> None:
    await record_history(audit_log)
    assert storage.engine is not None
    async with storage.engine.connect() as conn:
        count = (await conn.execute(text("SELECT count(*) FROM audit_log"))).scalar()
        anonymous = (
            await conn.execute(text("SELECT count(*) FROM audit_log WHERE actor_kind IS NULL"))
        ).scalar()
    assert (count, anonymous) == (6, 2)
