"""Auto-cancel through the trigger use case: a new commit's build cancels the redundant ones.

Driven on a real git repository: each new commit on a branch makes the older, unfinished
builds of that branch redundant, decided by their own ``workflow:auto_cancel`` mode.
"""

from __future__ import annotations

from ferrous.application import commands as c
from ferrous.domain.events import BuildAutoCanceled, JobCancelRequested
from ferrous.domain.statuses import BuildStatus

from .conftest import World

B = BuildStatus

INTERRUPTIBLE = """
stages: [build, test]
compile: {stage: build, script: [make], interruptible: true}
unit: {stage: test, script: [make test], interruptible: true}
"""
MIGRATION = """
stages: [build, test]
migrate: {stage: build, script: [migrate]}
unit: {stage: test, script: [make test], interruptible: true}
"""
MIXED = """
workflow:
  auto_cancel:
    on_new_commit: interruptible
lint: {script: [lint], interruptible: true}
deploy: {script: [deploy]}
"""


async def push(world: World, pipeline_id: str, **fields: object) -> str:
    """A new commit on the branch and the build it triggers; that build's id."""
    world.repo.commit({"README": world.repo.git("rev-parse", "HEAD")}, "change")
    build = await world.trigger(pipeline_id, source="push", **fields)
    return build.id


async def test_a_new_commit_cancels_the_running_interruptible_build(world: World) -> None:
    pipeline_id = await world.project(INTERRUPTIBLE)
    first = (await world.trigger(pipeline_id, source="push")).id
    agent = await world.agent()
    payload = await world.claim(agent)
    assert payload is not None
    assert world.statuses(first) == "compile=running unit=created"

    second = await push(world, pipeline_id)

    assert world.build(first).status == B.CANCELED
    assert world.statuses(first) == "compile=canceled unit=canceled"
    assert world.statuses(second) == "compile=pending unit=created"
    [canceled] = world.events(BuildAutoCanceled)
    assert (canceled.build_id, canceled.canceled_by, canceled.jobs) == (
        first,
        second,
        ("compile", "unit"),
    )
    assert world.events(JobCancelRequested)[-1].job_id == payload["job_id"]
    assert await world.bus.handle(
        c.Heartbeat(agent_id=agent, running_job_ids=(payload["job_id"],))
    ) == [payload["job_id"]]  # the agent is told to stop


async def test_pending_jobs_are_canceled_even_when_not_interruptible(world: World) -> None:
    pipeline_id = await world.project(MIGRATION)
    first = (await world.trigger(pipeline_id, source="push")).id
    await push(world, pipeline_id)
    assert world.statuses(first) == "migrate=canceled unit=canceled"


async def test_a_started_non_interruptible_job_keeps_the_old_build_running(world: World) -> None:
    pipeline_id = await world.project(MIGRATION)
    first = (await world.trigger(pipeline_id, source="push")).id
    agent = await world.agent()
    await world.run(agent)  # migrate ran (and succeeded): no way back
    assert world.statuses(first) == "migrate=success unit=pending"

    await push(world, pipeline_id)

    assert world.statuses(first) == "migrate=success unit=pending"
    assert world.events(BuildAutoCanceled) == []


async def test_other_branches_and_the_same_commit_are_left_alone(world: World) -> None:
    pipeline_id = await world.project(INTERRUPTIBLE)
    main = (await world.trigger(pipeline_id, source="push")).id
    world.repo.git("checkout", "-q", "-b", "feature")
    feature = await push(world, pipeline_id, ref="feature")
    again = (await world.trigger(pipeline_id, ref="feature", source="web")).id  # same commit
    scheduled = (await world.trigger(pipeline_id, ref="feature", source="schedule")).id

    for build_id in (main, feature, again, scheduled):
        assert world.build(build_id).status == B.PENDING, build_id
    assert world.events(BuildAutoCanceled) == []

    world.repo.git("checkout", "-q", "main")
    latest = await push(world, pipeline_id, ref="main")
    assert world.build(main).status == B.CANCELED
    assert world.build(latest).status == B.PENDING
    assert world.build(feature).status == B.PENDING


async def test_a_schedule_after_a_new_commit_cancels_the_older_push_build(world: World) -> None:
    pipeline_id = await world.project(INTERRUPTIBLE)
    first = (await world.trigger(pipeline_id, source="push")).id
    world.repo.commit({"README": "newer"})
    schedule = await world.bus.handle(c.CreateSchedule(pipeline_id=pipeline_id, cron="@daily"))

    await world.bus.handle(c.RunSchedule(schedule_id=schedule.id))

    assert world.build(first).status == B.CANCELED


async def test_a_build_with_a_broken_pipeline_file_cancels_nothing(world: World) -> None:
    pipeline_id = await world.project(INTERRUPTIBLE)
    first = (await world.trigger(pipeline_id, source="push")).id
    world.repo.commit({".gitlab-ci.yml": "job:\n  script: [x]\n  needs: [nope]\n"})
    broken = await world.trigger(pipeline_id, source="push")

    assert broken.status == B.FAILED
    assert world.build(first).status == B.PENDING


async def test_interruptible_mode_cancels_only_interruptible_jobs(world: World) -> None:
    pipeline_id = await world.project(MIXED)
    first = (await world.trigger(pipeline_id, source="push")).id
    agent = await world.agent(capacity=2)
    await world.claim(agent)
    await world.claim(agent)
    assert world.statuses(first) == "lint=running deploy=running"

    await push(world, pipeline_id)

    assert world.statuses(first) == "lint=canceled deploy=running"
    assert world.build(first).status == B.RUNNING


async def test_none_mode_from_a_matching_rule_keeps_old_builds(world: World) -> None:
    pipeline_id = await world.project(
        "workflow:\n  rules:\n    - if: $CI_COMMIT_BRANCH == 'main'\n"
        "      auto_cancel:\n        on_new_commit: none\n"
        "unit: {script: [make test], interruptible: true}\n"
    )
    first = (await world.trigger(pipeline_id, source="push")).id
    await push(world, pipeline_id)
    assert world.build(first).status == B.PENDING
