"""An attempt's phases (for build traces) are stored with it and read back, on every backend;
a build whose agents reported none reads back none."""

from __future__ import annotations

import pytest

from ferrous.domain.errors import InvalidValue
from ferrous.domain.phases import Phase
from tests.integration.sql.conftest import Storage
from tests.integration.sql.factories import at, job, new_build, seed_pipeline, store_build


def phases(start: float) -> tuple[Phase, ...]:
    names = ("prepare", "script", "after_script", "upload")
    return tuple(
        Phase(name=name, started_at=at(start + i), finished_at=at(start + i + 0.5))
        for i, name in enumerate(names)
    )


async def test_phases_round_trip_with_their_attempt(storage: Storage) -> None:
    _, pipeline = await seed_pipeline(storage.uow_factory)
    build = await store_build(
        storage.uow_factory,
        new_build(pipeline, 1, [job("unit", retry_max=1, retry_when=("script_failure",))]),
    )
    unit_id = build.jobs["unit"].id
    async with storage.uow_factory() as uow:
        b = await uow.builds.get(build.id)
        b.start_job(unit_id, "agent-1", at(1))
        b.complete_job(
            unit_id, attempt=1, exit_code=1, failure_reason=None, now=at(6), phases=phases(1)
        )
        b.start_job(unit_id, "agent-1", at(7))
        b.complete_job(unit_id, attempt=2, exit_code=0, failure_reason=None, now=at(9))
        await uow.builds.save(b)
        await uow.commit()
    async with storage.uow_factory() as uow:
        again = await uow.builds.get(build.id)
    first, second = again.jobs["unit"].history
    assert first.phases == phases(1)
    assert first.phases[0].started_at.tzinfo is not None
    assert second.phases == ()


async def test_a_report_with_unknown_phases_changes_nothing(storage: Storage) -> None:
    _, pipeline = await seed_pipeline(storage.uow_factory)
    build = await store_build(storage.uow_factory, new_build(pipeline, 1))
    job_id = build.jobs["build"].id
    async with storage.uow_factory() as uow:
        b = await uow.builds.get(build.id)
        b.start_job(job_id, "agent-1", at(1))
        bad = (Phase(name="coffee", started_at=at(1), finished_at=at(2)),)
        with pytest.raises(InvalidValue, match="unknown phase"):
            b.complete_job(
                job_id, attempt=1, exit_code=0, failure_reason=None, now=at(3), phases=bad
            )
        backwards = (Phase(name="script", started_at=at(2), finished_at=at(1)),)
        with pytest.raises(InvalidValue, match="finished before"):
            b.complete_job(
                job_id, attempt=1, exit_code=0, failure_reason=None, now=at(3), phases=backwards
            )
        assert b.jobs["build"].history == []
