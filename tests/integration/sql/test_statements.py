"""What the SQL adapter sends: few statements to load, and only the changes to save."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from ferrous.infrastructure.sql import sql_uow_factory
from tests.integration.sql.factories import at, job, new_build, seed_pipeline, store_build


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request: pytest.FixtureRequest) -> AsyncEngine:
    engine: AsyncEngine = request.getfixturevalue(f"{request.param}_engine")
    return engine


@contextmanager
def recorded(engine: AsyncEngine) -> Iterator[list[tuple[str, int]]]:
    """(first words of each statement, rows it was given) sent through ``engine``."""
    seen: list[tuple[str, int]] = []

    def record(conn: Any, cursor: Any, statement: str, params: Any, ctx: Any, many: bool) -> None:
        words = statement.split()
        verb = words[0]
        if verb in ("SELECT", "UPDATE", "INSERT", "DELETE"):
            after = {"SELECT": "FROM", "UPDATE": "UPDATE", "INSERT": "INTO", "DELETE": "FROM"}
            table = words[words.index(after[verb]) + 1]
            seen.append((f"{verb} {table}", len(params) if many else 1))

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


async def test_load_and_save_send_only_what_is_needed(engine: AsyncEngine) -> None:
    uow_factory = sql_uow_factory(engine)
    _, pipeline = await seed_pipeline(uow_factory)
    jobs = [job(f"j{i}", stage_index=0, tags=("linux",)) for i in range(5)]
    build = new_build(pipeline, 1, jobs)
    with recorded(engine) as add:
        await store_build(uow_factory, build)
    assert add == [
        ("INSERT builds", 1),
        ("INSERT jobs", 5),
        ("INSERT job_tags", 5),
        ("INSERT outbox", 6),  # BuildCreated, 5 x JobQueued
        ("INSERT status_reports", 1),  # a new status (none here: the project has no forge)
    ]

    job_id = build.jobs["j3"].id
    with recorded(engine) as first:
        async with uow_factory() as uow:
            b = await uow.builds.get(build.id)
            b.start_job(job_id, "agent-1", at(1))
            await uow.builds.save(b)
            await uow.commit()
    assert first == [
        ("SELECT builds", 1),
        ("SELECT jobs", 1),  # no job started yet: no attempts to read
        ("UPDATE builds", 1),
        ("UPDATE jobs", 1),  # only the started job
        ("INSERT outbox", 2),
        ("INSERT status_reports", 1),  # pending -> running
    ]

    with recorded(engine) as second:
        async with uow_factory() as uow:
            b = await uow.builds.get(build.id)
            b.complete_job(job_id, attempt=1, exit_code=0, failure_reason=None, now=at(2))
            await uow.builds.save(b)
            await uow.commit()
    assert second == [
        ("SELECT builds", 1),
        ("SELECT jobs", 1),
        ("SELECT job_attempts", 1),
        ("UPDATE builds", 1),
        ("UPDATE jobs", 1),
        ("INSERT job_attempts", 1),
        ("INSERT outbox", 1),  # the build runs on: no status report
    ]
