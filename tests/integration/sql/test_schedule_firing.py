"""Two firers race for one tick on a real database: exactly one build, one advance.

Two message buses on one database stand for two servers whose schedule firers both run (a
singleton lock that changed hands, say). A barrier in their git source holds both inside the
firing transaction, after each read the schedule as due, until both are there; then they
write. The compare-and-set on the schedule's version lets one commit; the other rolls back,
its build with it, and when the bus runs it again the tick is no longer due.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from structlog.testing import capture_logs

from ferrous.application import commands as c
from ferrous.application.dependencies import Dependencies
from ferrous.application.messagebus import MessageBus
from ferrous.application.source_ports import ResolvedRef
from ferrous.domain.schedule import Schedule
from ferrous.infrastructure.git.source_repository import GitSourceRepository
from ferrous.infrastructure.sql import SqlQueries
from ferrous.infrastructure.sql.schema import builds, outbox
from tests.integration.sql.conftest import Storage

NIGHT = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.current = now

    def now(self) -> datetime:
        return self.current


class BarrierSources:
    """A git source whose ``checkout`` waits until ``parties`` callers have reached it."""

    def __init__(self, inner: GitSourceRepository, barrier: asyncio.Barrier) -> None:
        self.inner = inner
        self.barrier = barrier

    async def resolve(self, *args: Any) -> ResolvedRef:
        return await self.inner.resolve(*args)

    async def checkout(self, *args: Any) -> Path:
        async with asyncio.timeout(10):
            await self.barrier.wait()
        return await self.inner.checkout(*args)

    async def commit_info(self, *args: Any) -> dict[str, str]:
        return await self.inner.commit_info(*args)

    async def changed_files(self, *args: Any, **options: Any) -> Sequence[str] | None:
        return await self.inner.changed_files(*args, **options)


def git_repo(path: Path) -> str:
    path.mkdir()
    (path / ".gitlab-ci.yml").write_text("unit:\n  script: [make test]\n")
    env = {
        **os.environ,
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "Dev",
        "GIT_AUTHOR_EMAIL": "dev@example.com",
        "GIT_COMMITTER_NAME": "Dev",
        "GIT_COMMITTER_EMAIL": "dev@example.com",
    }
    for args in (("init", "-q", "-b", "main"), ("add", "-A"), ("commit", "-q", "-m", "ci")):
        subprocess.run(["git", "-C", str(path), *args], check=True, env=env, capture_output=True)
    return str(path)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_two_firers_racing_for_one_tick_fire_it_once(
    storage: Storage, tmp_path: Path
) -> None:
    assert storage.engine is not None
    clock = Clock(NIGHT - timedelta(days=1))
    barrier = asyncio.Barrier(2)

    def server(name: str) -> MessageBus:
        sources = BarrierSources(GitSourceRepository(tmp_path / f"trees-{name}"), barrier)
        return MessageBus(storage.uow_factory, Dependencies(clock=clock, sources=sources))

    first, second = server("a"), server("b")
    project = await first.handle(c.CreateProject(name="demo", repo_url=git_repo(tmp_path / "r")))
    [pipeline] = await SqlQueries(storage.engine).list_pipelines(project.id)
    schedule: Schedule = await first.handle(
        c.CreateSchedule(pipeline_id=pipeline.id, cron="0 3 * * *", variables={"N": "1"})
    )
    assert schedule.next_run_at == NIGHT
    clock.current = NIGHT + timedelta(seconds=1)

    with capture_logs() as logs:
        results = await asyncio.gather(
            first.handle(c.FireSchedule(schedule_id=schedule.id)),
            second.handle(c.FireSchedule(schedule_id=schedule.id)),
        )

    assert barrier.n_waiting == 0  # both got past the "is it due?" check before writing
    events = [entry["event"] for entry in logs]
    assert events.count("schedule_fired") == 1
    assert events.count("command_retried_stale") == 1  # the loser, stopped by the version
    assert sorted(result is None for result in results) == [False, True]
    [winner] = [result for result in results if result is not None]
    async with storage.engine.connect() as conn:
        stored_builds = (await conn.execute(select(builds.c.id, builds.c.source))).all()
        created = (
            await conn.execute(
                select(func.count()).select_from(outbox).where(outbox.c.name == "BuildCreated")
            )
        ).scalar_one()
    assert [tuple(row) for row in stored_builds] == [(winner.id, "schedule")]
    assert created == 1
    view = await storage.queries.get_schedule(schedule.id)
    assert (view.last_build_id, view.last_run_at) == (winner.id, clock.current)
    assert view.next_run_at == NIGHT + timedelta(days=1)
