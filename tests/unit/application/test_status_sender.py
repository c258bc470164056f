"""The status sender on the in-memory adapters, posting to a recording fake forge: one status
per build state, the newest one only, retries with backoff, and giving up.

The unit of work stamps queued reports with the wall clock (as it stamps the outbox), so the
test clock starts a minute from now: what is queued is due at once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ferrous.application import commands as c
from ferrous.application.dependencies import Dependencies
from ferrous.application.messagebus import MessageBus
from ferrous.application.status_sender import MAX_ATTEMPTS, StatusSender
from ferrous.domain.commit_status import ReportOutcome
from ferrous.domain.forge import ForgeKind, ForgeSettings
from ferrous.infrastructure.forges.statuses import HttpCommitStatusClient
from ferrous.infrastructure.git.source_repository import GitSourceRepository
from ferrous.infrastructure.memory import InMemoryStore, PlaintextSecretBox, memory_uow_factory
from ferrous.infrastructure.memory.status_reports import StoredReport
from tests.fake_forge import FakeForge
from tests.unit.application.conftest import SERVER_URL, TWO_STAGES, FakeClock, World

TOKEN = "ghp-s3cret"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime.now(UTC) + timedelta(minutes=1))


@pytest.fixture
def bus(store: InMemoryStore, clock: FakeClock, tmp_path: Path) -> MessageBus:
    deps = Dependencies(
        clock=clock,
        sources=GitSourceRepository(tmp_path / "trees"),
        secret_box=PlaintextSecretBox(),
        server_url=SERVER_URL,
    )
    return MessageBus(memory_uow_factory(store), deps)


@pytest.fixture
def forge() -> Iterator[FakeForge]:
    with FakeForge(token=TOKEN) as fake:
        yield fake


@pytest.fixture
async def sender(store: InMemoryStore, bus: MessageBus) -> AsyncIterator[StatusSender]:
    sending = StatusSender(memory_uow_factory(store), HttpCommitStatusClient(), bus.deps)
    yield sending
    await sending.close()


async def forge_project(world: World, forge: FakeForge, token: str = TOKEN) -> str:
    """A project reporting to the fake forge as GitHub; its default pipeline's id."""
    world.repo.commit({".gitlab-ci.yml": TWO_STAGES}, "pipeline")
    settings = ForgeSettings(kind=ForgeKind.GITHUB, api_url=forge.url, repo="o/r", token=token)
    project = await world.bus.handle(
        c.CreateProject(name="demo", repo_url=world.repo.url, forge=settings)
    )
    [pipeline] = [p for p in world.store.pipelines.values() if p.project_id == project.id]
    return pipeline.id


def reports(store: InMemoryStore) -> list[StoredReport]:
    return list(store.status_reports)


async def test_each_state_of_a_build_is_posted_once(
    world: World, forge: FakeForge, sender: StatusSender
) -> None:
    build = await world.trigger(await forge_project(world, forge))
    agent = await world.agent()
    assert await sender.send_due() == 1
    payload = await world.claim(agent)
    assert payload is not None
    await sender.send_due()
    await world.finish(agent, payload)  # compile done, unit queued: still running
    await world.run(agent)
    await sender.send_due()
    assert await sender.send_due() == 0

    assert [(r.method, r.path) for r in forge.requests] == [
        ("POST", f"/repos/o/r/statuses/{build.sha}")
    ] * 3
    assert [r.json for r in forge.requests] == [
        {
            "state": state,
            "description": f"Build #1 {words}",
            "context": "ferrous/default",
            "target_url": f"{SERVER_URL}/builds/{build.id}",
        }
        for state, words in [
            ("pending", "is pending"),
            ("pending", "is running"),
            ("success", "succeeded"),
        ]
    ]
    assert {r.headers["authorization"] for r in forge.requests} == {f"Bearer {TOKEN}"}
    assert [r.outcome for r in reports(world.store)] == [ReportOutcome.SENT] * 3


async def test_only_the_newest_unsent_state_is_posted(
    world: World, forge: FakeForge, sender: StatusSender
) -> None:
    build = await world.trigger(await forge_project(world, forge))
    agent = await world.agent()
    await world.run(agent)
    await world.run(agent)  # pending, running, success queued; nothing sent yet

    assert await sender.send_due() == 1

    assert [r.json["state"] for r in forge.requests] == ["success"]
    assert [(r.state.value, r.outcome) for r in reports(world.store)] == [
        ("pending", ReportOutcome.SUPERSEDED),
        ("running", ReportOutcome.SUPERSEDED),
        ("success", ReportOutcome.SENT),
    ]
    assert world.build(build.id).status == "success"


async def test_a_project_without_a_forge_queues_nothing(world: World, sender: StatusSender) -> None:
    await world.trigger(await world.project())
    assert world.store.status_reports == []
    assert await sender.send_due() == 0


async def test_failures_are_retried_with_backoff(
    world: World, forge: FakeForge, sender: StatusSender, clock: FakeClock
) -> None:
    await world.trigger(await forge_project(world, forge))
    forge.fail(2, status=502)

    assert await sender.send_due() == 1  # fails: due again in 1 s
    [report] = reports(world.store)
    assert (report.attempts, report.outcome) == (1, None)
    assert report.next_attempt_at is not None
    assert (report.next_attempt_at - clock.now()).total_seconds() == 1.0
    assert "502" in (report.last_error or "")
    assert await sender.send_due() == 0  # not yet
    clock.advance(seconds=1)
    assert await sender.send_due() == 1  # fails: due again in 2 s
    assert (report.next_attempt_at - clock.now()).total_seconds() == 2.0
    clock.advance(seconds=1)
    assert await sender.send_due() == 0
    clock.advance(seconds=1)
    assert await sender.send_due() == 1

    assert [r.status for r in forge.requests] == [502, 502, 201]
    assert (report.attempts, report.outcome, report.last_error) == (3, ReportOutcome.SENT, None)


async def test_retry_after_is_honored(
    world: World, forge: FakeForge, sender: StatusSender, clock: FakeClock
) -> None:
    await world.trigger(await forge_project(world, forge))
    forge.fail(1, status=429, retry_after="30")

    await sender.send_due()

    [report] = reports(world.store)
    assert report.next_attempt_at is not None
    assert (report.next_attempt_at - clock.now()).total_seconds() == 30.0


async def test_a_forge_that_keeps_failing_is_given_up(
    world: World, forge: FakeForge, sender: StatusSender, clock: FakeClock
) -> None:
    await world.trigger(await forge_project(world, forge))
    forge.fail(100, status=500)

    for _ in range(MAX_ATTEMPTS + 3):
        await sender.send_due()
        clock.advance(seconds=600)

    [report] = reports(world.store)
    assert (report.attempts, report.outcome) == (MAX_ATTEMPTS, ReportOutcome.GIVEN_UP)
    assert report.next_attempt_at is None
    assert "500" in (report.last_error or "")
    assert len(forge.requests) == MAX_ATTEMPTS


async def test_a_refused_token_is_given_up_at_once(
    world: World, forge: FakeForge, sender: StatusSender, clock: FakeClock
) -> None:
    await world.trigger(await forge_project(world, forge, token="revoked"))

    await sender.send_due()
    clock.advance(seconds=600)
    await sender.send_due()

    [report] = reports(world.store)
    assert (report.attempts, report.outcome) == (1, ReportOutcome.GIVEN_UP)
    assert "401" in (report.last_error or "")
    assert "revoked" not in (report.last_error or "")
    assert len(forge.requests) == 1


async def test_a_project_that_left_its_forge_gives_its_reports_up(
    world: World, forge: FakeForge, sender: StatusSender
) -> None:
    build = await world.trigger(await forge_project(world, forge))
    await world.bus.handle(
        c.UpdateProject(
            project_id=world.build(build.id).project_id, forge=ForgeSettings(kind=ForgeKind.NONE)
        )
    )

    await sender.send_due()

    [report] = reports(world.store)
    assert report.outcome is ReportOutcome.GIVEN_UP
    assert forge.requests == []


async def test_settled_reports_are_pruned_after_a_week(
    world: World, forge: FakeForge, sender: StatusSender, clock: FakeClock
) -> None:
    await world.trigger(await forge_project(world, forge))
    await sender.send_due()
    sender._pruned_at = None  # the next pass prunes
    clock.advance(days=8)

    await sender.send_due()

    assert world.store.status_reports == []
