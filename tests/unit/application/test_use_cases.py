"""Every use case through ``bus.handle`` on the in-memory adapters, and the bus itself.

Builds come from a real git repository (``GitRepo``) read by ``GitSourceRepository``; the
clock is moved by hand. Assertions are on the committed state and the outbox's events.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from ferrous.application import commands as c
from ferrous.application.messagebus import COMMAND_HANDLERS, MAX_ATTEMPTS
from ferrous.application.ports import StaleState, UnitOfWork
from ferrous.application.use_cases.cancel_build import cancel_build
from ferrous.application.use_cases.register_agent import hash_token
from ferrous.application.use_cases.report_job_progress import ORPHAN_GRACE
from ferrous.domain.agent import AgentStatus
from ferrous.domain.build import RUNNER_SYSTEM_FAILURE
from ferrous.domain.errors import ConfigInvalid, Conflict, Contention, InvalidTransition, NotFound
from ferrous.domain.events import (
    AgentDisconnected,
    BuildCompleted,
    JobCancelRequested,
    JobCompleted,
    JobQueued,
    PipelineDisabled,
    PipelineEnabled,
    ProjectCreated,
)
from ferrous.domain.project import Project
from ferrous.domain.statuses import BuildStatus, JobStatus
from ferrous.infrastructure.memory import InMemoryStore

from .conftest import LEASE_TIMEOUT, SERVER_URL, T0, World

B, S = BuildStatus, JobStatus

TAGGED = """
cpu-job:
  script: [make]
gpu-job:
  script: [train]
  tags: [gpu]
"""

PAYLOAD = """
stages: [build, test]
compile: {stage: build, script: [make]}
lint: {stage: build, script: [lint]}
unit: {stage: test, script: [make test], variables: {LEVEL: "3"}}
pkg: {stage: test, script: [pack], needs: [compile, {job: lint, artifacts: false}]}
docs: {stage: test, script: [doc], dependencies: []}
"""

FLAKY = """
flaky:
  script: [./flaky.sh]
  retry: 1
"""

DELAYED = """
deploy:
  when: delayed
  start_in: 30 minutes
  script: [deploy]
"""

MANUAL = """
stages: [build, deploy]
compile: {stage: build, script: [make]}
ship: {stage: deploy, script: [ship], when: manual}
"""


# --- projects and pipelines ---------------------------------------------------------------


async def test_create_project_with_its_default_pipeline(world: World):
    project: Project = await world.bus.handle(
        c.CreateProject(name="demo", repo_url="/srv/git/demo.git", default_branch="trunk")
    )
    stored = world.store.projects[project.id]
    assert (stored.name, stored.repo_url, stored.default_branch) == (
        "demo",
        "/srv/git/demo.git",
        "trunk",
    )
    assert stored.created_at == T0
    [pipeline] = world.store.pipelines.values()
    assert (pipeline.project_id, pipeline.name, pipeline.enabled) == (project.id, "default", True)
    assert pipeline.config_path is None
    assert world.kinds() == ["ProjectCreated", "PipelineCreated"]


async def test_a_project_name_is_unique(world: World):
    await world.bus.handle(c.CreateProject(name="demo", repo_url="/a"))
    with pytest.raises(Conflict):
        await world.bus.handle(c.CreateProject(name="demo", repo_url="/b"))
    assert [p.repo_url for p in world.store.projects.values()] == ["/a"]
    assert len(world.store.pipelines) == 1
    with pytest.raises(ConfigInvalid):
        await world.bus.handle(c.CreateProject(name="no spaces", repo_url="/c"))


async def test_create_pipeline_with_a_unique_name(world: World):
    project = await world.bus.handle(c.CreateProject(name="demo", repo_url="/a"))
    nightly = await world.bus.handle(
        c.CreatePipeline(project_id=project.id, name="nightly", config_path=".gitlab-ci.yml")
    )
    assert world.store.pipelines[nightly.id].config_path == ".gitlab-ci.yml"
    with pytest.raises(Conflict):
        await world.bus.handle(c.CreatePipeline(project_id=project.id, name="nightly"))
    with pytest.raises(NotFound):
        await world.bus.handle(c.CreatePipeline(project_id="no-such-project", name="x"))
    assert len(world.store.pipelines) == 2


async def test_a_disabled_pipeline_refuses_builds_until_enabled(world: World):
    pipeline_id = await world.project()
    for _ in range(2):  # the second time changes nothing
        await world.bus.handle(c.DisablePipeline(pipeline_id=pipeline_id))
    assert not world.store.pipelines[pipeline_id].enabled
    with pytest.raises(Conflict):
        await world.trigger(pipeline_id)
    assert world.store.builds == {}

    await world.bus.handle(c.EnablePipeline(pipeline_id=pipeline_id))
    build = await world.trigger(pipeline_id)

    assert build.status == B.PENDING
    assert len(world.events(PipelineDisabled)) == len(world.events(PipelineEnabled)) == 1


# --- trigger ------------------------------------------------------------------------------


async def test_trigger_builds_the_committed_pipeline_file(world: World):
    pipeline_id = await world.project()
    build = await world.trigger(pipeline_id)

    assert (build.number, build.ref, build.source) == (1, "main", "api")
    assert build.sha == world.repo.git("rev-parse", "HEAD")
    assert (build.status, build.created_at) == (B.PENDING, T0)
    assert world.statuses(build.id) == "compile=pending unit=created"
    compile_job = build.jobs["compile"]
    assert (compile_job.definition.stage, list(compile_job.spec["script"])) == ("build", ["make"])
    assert world.kinds()[-2:] == ["BuildCreated", "JobQueued"]
    assert world.events(JobQueued)[-1].job_id == compile_job.id

    new_sha = world.repo.commit({"README": "hello"}, "docs")
    again = await world.trigger(pipeline_id)
    assert (again.number, again.sha) == (2, new_sha)


async def test_trigger_at_a_tag_or_an_older_sha(world: World):
    pipeline_id = await world.project()
    old_sha = world.repo.git("rev-parse", "HEAD")
    world.repo.git("tag", "v1.0")
    world.repo.commit({"README": "newer"})

    tagged = await world.trigger(pipeline_id, ref="v1.0")
    pinned = await world.trigger(pipeline_id, sha=old_sha)

    assert (tagged.ref, tagged.sha) == ("v1.0", old_sha)
    assert pinned.sha == old_sha


async def test_an_invalid_pipeline_file_gives_a_failed_build_with_its_problems(world: World):
    pipeline_id = await world.project("job:\n  script: [x]\n  needs: [nope]\n")
    build = await world.trigger(pipeline_id)

    assert (build.status, build.failure_reason, build.finished_at) == (B.FAILED, "config_error", T0)
    assert build.jobs == {}
    errors = [p for p in build.problems if p["severity"] == "error"]
    assert errors
    assert any("nope" in p["message"] for p in errors)
    assert world.kinds()[-2:] == ["BuildCreated", "BuildCompleted"]


async def test_a_missing_pipeline_file_is_a_problem_too(world: World):
    world.repo.commit({"README": "no pipeline"})
    pipeline_id = await world.project(pipeline=None)
    build = await world.trigger(pipeline_id)
    assert build.status == B.FAILED
    assert "no pipeline file" in build.problems[0]["message"]


async def test_workflow_rules_that_create_nothing_give_a_skipped_build(world: World):
    pipeline_id = await world.project(
        'workflow:\n  rules:\n    - if: $CI_COMMIT_BRANCH == "release"\njob:\n  script: [x]\n'
    )
    build = await world.trigger(pipeline_id)

    assert (build.status, build.finished_at, build.jobs) == (B.SKIPPED, T0, {})
    [warning] = build.problems
    assert (warning["severity"], warning["code"]) == ("warning", "workflow-never")
    assert world.events(BuildCompleted)[-1].status == "skipped"


async def test_trigger_variables_reach_the_jobs(world: World):
    pipeline_id = await world.project(
        "variables: {TARGET: dev}\n"
        "test: {script: [make test]}\n"
        'deploy:\n  script: [deploy $TARGET]\n  rules:\n    - if: $TARGET == "staging"\n'
    )
    plain = await world.trigger(pipeline_id)
    given = await world.trigger(pipeline_id, variables={"TARGET": "staging", "EXTRA": "1"})

    assert list(plain.jobs) == ["test"]
    assert plain.jobs["test"].spec["variables"]["TARGET"] == "dev"
    assert list(given.jobs) == ["test", "deploy"]
    assert given.variables == {"TARGET": "staging", "EXTRA": "1"}
    for job in given.jobs.values():
        assert job.spec["variables"]["TARGET"] == "staging"
        assert job.spec["variables"]["EXTRA"] == "1"


async def test_an_unknown_ref_is_not_found(world: World):
    pipeline_id = await world.project()
    with pytest.raises(NotFound):
        await world.trigger(pipeline_id, ref="no-such-branch")
    assert world.store.builds == {}


async def test_job_definitions_follow_the_file(world: World):
    pipeline_id = await world.project(
        "stages: [build, test]\n"
        "compile:\n  stage: build\n  script: [make]\n  tags: [gpu, linux]\n  timeout: 10m\n"
        "  retry: {max: 2, when: runner_system_failure, exit_codes: [137]}\n"
        "  allow_failure: {exit_codes: [3]}\n"
        "unit:\n  stage: test\n  needs: [compile]\n  script: [t]\n  interruptible: true\n"
        "later:\n  stage: test\n  when: delayed\n  start_in: 5 minutes\n  script: [x]\n"
    )
    build = await world.trigger(pipeline_id)
    compile_def, unit_def, later_def = (job.definition for job in build.jobs.values())

    assert (compile_def.stage, compile_def.tags, compile_def.timeout) == (
        "build",
        ("gpu", "linux"),
        600,
    )
    assert (compile_def.retry_max, compile_def.retry_when, compile_def.retry_exit_codes) == (
        2,
        (RUNNER_SYSTEM_FAILURE,),
        (137,),
    )
    assert (compile_def.allow_failure, compile_def.allow_failure_exit_codes) == (False, (3,))
    assert (unit_def.needs, unit_def.interruptible) == (("compile",), True)
    assert (later_def.when, later_def.start_in, later_def.needs) == ("delayed", 300, None)
    assert compile_def.stage_index < unit_def.stage_index == later_def.stage_index


# --- agents and claims --------------------------------------------------------------------


async def test_register_agent_returns_a_token_that_is_stored_hashed(world: World):
    agent, token = await world.bus.handle(
        c.RegisterAgent(name="builder", labels=("linux", "gpu"), capacity=3, platform={"os": "l"})
    )
    stored = world.store.agents[agent.id]
    assert token.startswith("fra_")
    assert len(token) > 40
    assert stored.token_hash == hash_token(token) != token
    assert token not in repr(stored)
    assert (stored.labels, stored.capacity, stored.platform) == (
        frozenset({"linux", "gpu"}),
        3,
        {"os": "l"},
    )
    assert (stored.status, stored.last_seen_at) == (AgentStatus.ONLINE, T0)
    assert world.kinds() == ["AgentRegistered"]
    _, other = await world.bus.handle(c.RegisterAgent(name="builder"))
    assert other != token


async def test_a_tagged_job_is_claimed_only_by_an_agent_with_that_label(world: World):
    build = await world.trigger(await world.project(TAGGED))
    plain = await world.agent("plain", labels=("linux",), capacity=5)
    gpu = await world.agent("gpu", labels=("linux", "gpu"), capacity=5)

    first = await world.claim(plain)
    assert first is not None
    assert first["name"] == "cpu-job"
    assert await world.claim(plain) is None  # only the gpu job is left
    second = await world.claim(gpu)
    assert second is not None
    assert second["name"] == "gpu-job"
    assert world.job(build.id, "gpu-job").agent_id == gpu
    assert world.statuses(build.id) == "cpu-job=running gpu-job=running"


async def test_an_agent_never_runs_more_jobs_than_its_capacity(world: World):
    pipeline_id = await world.project(TAGGED.replace("tags: [gpu]", "tags: []"))
    await world.trigger(pipeline_id)
    await world.trigger(pipeline_id)
    agent = await world.agent(capacity=2)

    claimed = [await world.claim(agent), await world.claim(agent)]
    assert all(claimed)
    assert await world.claim(agent) is None
    assert claimed[0]
    await world.finish(agent, claimed[0])
    assert await world.claim(agent) is not None
    assert await world.claim(agent) is None


async def test_the_oldest_pending_job_is_claimed_first(world: World):
    pipeline_id = await world.project()
    first = await world.trigger(pipeline_id)
    world.clock.advance(minutes=1)
    second = await world.trigger(pipeline_id)
    agent = await world.agent(capacity=5)

    world.clock.advance(minutes=1)
    assert (await world.run(agent))["build_id"] == first.id  # its compile; unit is queued now
    claimed = [await world.claim(agent), await world.claim(agent)]
    assert [(p["build_id"], p["name"]) for p in claimed if p] == [
        (second.id, "compile"),
        (first.id, "unit"),
    ]


async def test_the_claim_payload_has_what_the_agent_needs(world: World):
    build = await world.trigger(await world.project(PAYLOAD), variables={"WHO": "me"})
    agent = await world.agent(capacity=5)
    compile_payload = await world.run(agent)
    await world.run(agent)  # lint
    payloads = {}
    for _ in range(3):
        payload = await world.claim(agent)
        assert payload is not None
        payloads[payload["name"]] = payload

    unit = payloads["unit"]
    job = world.job(build.id, "unit")
    assert (unit["job_id"], unit["build_id"], unit["attempt"]) == (job.id, build.id, 1)
    assert (unit["repo_url"], unit["sha"], unit["ref"]) == (world.repo.url, build.sha, "main")
    assert list(unit["spec"]["script"]) == ["make test"]
    assert unit["spec"]["variables"]["LEVEL"] == "3"
    assert unit["spec"]["variables"]["WHO"] == "me"
    assert unit["variables"]["CI_JOB_ID"] == job.id
    assert unit["variables"]["CI_JOB_NAME"] == "unit"
    assert unit["variables"]["CI_JOB_STAGE"] == "test"
    assert unit["variables"]["CI_PIPELINE_ID"] == build.id
    assert unit["variables"]["CI_PIPELINE_IID"] == "1"
    assert unit["variables"]["CI_JOB_URL"] == f"{SERVER_URL}/jobs/{job.id}"
    assert unit["variables"]["FERROUS_JOB_ATTEMPT"] == "1"
    assert unit["log_offset"] == 0
    assert [d["name"] for d in unit["dependencies"]] == ["compile", "lint"]
    assert unit["dependencies"][0]["job_id"] == compile_payload["job_id"]
    assert [d["name"] for d in payloads["pkg"]["dependencies"]] == ["compile"]
    assert payloads["docs"]["dependencies"] == []


# --- heartbeat and logs -------------------------------------------------------------------


async def test_a_heartbeat_renews_the_agent_and_lists_what_to_cancel(world: World):
    build = await world.trigger(await world.project(TAGGED.replace("tags: [gpu]", "")))
    agent = await world.agent(capacity=2)
    other = await world.agent("other")
    mine = await world.claim(agent)
    theirs = await world.claim(other)
    assert mine
    assert theirs

    world.clock.advance(seconds=5)
    running = (mine["job_id"], theirs["job_id"], "no-such-job")
    cancel = await world.bus.handle(c.Heartbeat(agent_id=agent, running_job_ids=running))

    assert cancel == [theirs["job_id"], "no-such-job"]
    assert world.store.agents[agent].last_seen_at == T0 + timedelta(seconds=5)
    assert world.job(build.id, mine["name"]).status == S.RUNNING

    await world.bus.handle(c.CancelBuild(build_id=build.id))
    cancel = await world.bus.handle(c.Heartbeat(agent_id=agent, running_job_ids=running[:1]))
    assert cancel == [mine["job_id"]]


async def test_a_leased_job_the_agent_does_not_report_is_lost_after_the_grace(world: World):
    build = await world.trigger(await world.project())
    agent = await world.agent()
    payload = await world.claim(agent)
    assert payload

    world.clock.advance(seconds=ORPHAN_GRACE.total_seconds())
    assert await world.bus.handle(c.Heartbeat(agent_id=agent)) == []
    assert world.job(build.id, "compile").status == S.RUNNING  # the claim's answer may be late

    world.clock.advance(seconds=1)
    await world.bus.handle(c.Heartbeat(agent_id=agent))
    job = world.job(build.id, "compile")
    assert (job.status, job.failure_reason) == (S.FAILED, RUNNER_SYSTEM_FAILURE)
    assert world.build(build.id).status == B.FAILED
    assert world.store.agents[agent].status == AgentStatus.ONLINE


async def test_only_the_lease_holder_appends_to_the_log(world: World):
    build = await world.trigger(await world.project())
    agent = await world.agent()
    other = await world.agent("other")
    payload = await world.claim(agent)
    assert payload
    job_id = payload["job_id"]

    def append(who: str, offset: int, data: bytes) -> c.AppendLog:
        return c.AppendLog(agent_id=who, job_id=job_id, offset=offset, data=data)

    assert await world.bus.handle(append(agent, 0, b"hello\n")) == 6
    assert await world.bus.handle(append(agent, 0, b"hello\n")) == 6  # a repeat: once
    assert await world.bus.handle(append(agent, 3, b"lo\nworld\n")) == 12
    with pytest.raises(Conflict):
        await world.bus.handle(append(agent, 20, b"gap"))
    with pytest.raises(Conflict):
        await world.bus.handle(append(agent, 0, b"HELLO\n"))
    with pytest.raises(Conflict):
        await world.bus.handle(append(other, 12, b"not mine\n"))
    await world.finish(agent, payload)
    with pytest.raises(Conflict):
        await world.bus.handle(append(agent, 12, b"too late\n"))
    assert world.store.logs[job_id] == b"hello\nworld\n"
    assert world.job(build.id, "compile").status == S.SUCCESS


# --- complete -----------------------------------------------------------------------------


async def test_completing_a_stage_queues_the_next_and_the_last_finishes_the_build(world: World):
    build = await world.trigger(await world.project())
    agent = await world.agent()

    world.clock.advance(minutes=1)
    await world.run(agent)
    assert world.statuses(build.id) == "compile=success unit=pending"
    assert world.job(build.id, "unit").queued_at == T0 + timedelta(minutes=1)
    assert world.build(build.id).status == B.RUNNING

    world.clock.advance(minutes=1)
    await world.run(agent)
    done = world.build(build.id)
    assert (done.status, done.started_at, done.finished_at) == (
        B.SUCCESS,
        T0 + timedelta(minutes=1),
        T0 + timedelta(minutes=2),
    )
    assert world.kinds()[2:] == [
        "BuildCreated", "JobQueued", "AgentRegistered",
        "JobStarted", "BuildStarted", "JobCompleted", "JobQueued",
        "JobStarted", "JobCompleted", "BuildCompleted",
    ]  # fmt: skip
    assert [e.status for e in world.events(JobCompleted)] == ["success", "success"]
    assert world.events(BuildCompleted)[-1].status == "success"


async def test_a_failed_job_with_retry_runs_again_as_a_new_attempt(world: World):
    build = await world.trigger(await world.project(FLAKY))
    agent = await world.agent()
    first = await world.claim(agent)
    assert first
    await world.bus.handle(
        c.AppendLog(agent_id=agent, job_id=first["job_id"], offset=0, data=b"attempt 1\n")
    )
    await world.finish(agent, first, exit_code=1)
    job = world.job(build.id, "flaky")
    assert (job.status, job.attempt, job.agent_id) == (S.PENDING, 1, None)

    second = await world.claim(agent)
    assert second
    assert (second["attempt"], second["variables"]["FERROUS_JOB_ATTEMPT"]) == (2, "2")
    assert second["log_offset"] == len(b"attempt 1\n")
    await world.finish(agent, second, exit_code=1)

    job = world.job(build.id, "flaky")
    assert (job.status, job.attempt, len(job.history)) == (S.FAILED, 2, 2)
    assert world.build(build.id).status == B.FAILED
    assert [(e.attempt, e.status) for e in world.events(JobCompleted)] == [
        (1, "failed"),
        (2, "failed"),
    ]


async def test_a_result_is_taken_from_the_lease_holder_only_and_once(world: World):
    build = await world.trigger(await world.project())
    agent = await world.agent()
    other = await world.agent("other")
    payload = await world.claim(agent)
    assert payload

    with pytest.raises(Conflict):
        await world.finish(other, payload)
    with pytest.raises(Conflict):
        await world.finish(agent, {**payload, "attempt": 2})
    await world.finish(agent, payload)
    count = len(world.store.outbox)
    await world.finish(agent, payload)  # its answer was lost: the same report again
    assert len(world.store.outbox) == count
    with pytest.raises(Conflict):
        await world.finish(agent, payload, exit_code=1)  # a different result
    assert world.statuses(build.id) == "compile=success unit=pending"


async def test_a_repeated_failure_report_is_accepted_once_after_its_retry_was_queued(
    world: World,
):
    build = await world.trigger(await world.project(FLAKY))
    agent = await world.agent()
    other = await world.agent("other")
    first = await world.claim(agent)
    assert first
    await world.finish(agent, first, exit_code=1)  # earns a retry: the job is pending again
    count = len(world.store.outbox)

    await world.finish(agent, first, exit_code=1)  # its answer was lost: the same report again
    assert (len(world.store.outbox), world.statuses(build.id)) == (count, "flaky=pending")
    second = await world.claim(other)
    assert second
    await world.finish(agent, first, exit_code=1)  # even once another agent has attempt 2
    with pytest.raises(Conflict):
        await world.finish(other, first, exit_code=1)  # attempt 1 was not the other's
    with pytest.raises(Conflict):
        await world.finish(agent, first, exit_code=0)  # a different result
    assert len(world.store.outbox) == count + 1  # attempt 2's JobStarted
    assert world.job(build.id, "flaky").agent_id == other


# --- housekeeping -------------------------------------------------------------------------


RETRY_LOST = "retry: {max: 1, when: runner_system_failure}"


@pytest.mark.parametrize(
    ("retry", "status", "build_status"),
    [
        pytest.param("", S.FAILED, B.FAILED, id="no retry"),
        pytest.param(RETRY_LOST, S.PENDING, B.RUNNING, id="retry on runner_system_failure"),
    ],
)
async def test_a_silent_agent_is_disconnected_and_its_job_settled(
    world: World, retry: str, status: JobStatus, build_status: BuildStatus
):
    build = await world.trigger(await world.project(f"job:\n  script: [x]\n  {retry}\n"))
    silent = await world.agent("silent")
    payload = await world.claim(silent)
    assert payload
    world.clock.advance(seconds=30)
    alive = await world.agent("alive")

    world.clock.advance(seconds=LEASE_TIMEOUT.total_seconds() - 30)
    assert await world.bus.handle(c.ReapLeases()) == 0  # silent for exactly the timeout
    world.clock.advance(seconds=1)
    assert await world.bus.handle(c.ReapLeases()) == 1

    assert world.store.agents[silent].status == AgentStatus.OFFLINE
    assert world.store.agents[alive].status == AgentStatus.ONLINE
    [disconnected] = world.events(AgentDisconnected)
    assert disconnected.agent_id == silent
    job = world.job(build.id, "job")
    assert (job.status, job.failure_reason) == (status, RUNNER_SYSTEM_FAILURE)
    assert world.build(build.id).status == build_status
    assert [e.failure_reason for e in world.events(JobCompleted)] == [RUNNER_SYSTEM_FAILURE]
    assert await world.bus.handle(c.ReapLeases()) == 0

    with pytest.raises(Conflict):  # the agent comes back: its result is too late
        await world.finish(silent, payload)
    assert world.job(build.id, "job").status == status


async def test_a_delayed_job_starts_once_the_clock_passes_its_time(world: World):
    build = await world.trigger(await world.project(DELAYED))
    agent = await world.agent()
    job = world.job(build.id, "deploy")
    assert (job.status, job.scheduled_for) == (S.SCHEDULED, T0 + timedelta(minutes=30))
    assert world.build(build.id).status == B.SCHEDULED
    assert await world.claim(agent) is None

    world.clock.advance(minutes=29)
    assert await world.bus.handle(c.StartDueJobs()) == 0
    assert world.job(build.id, "deploy").status == S.SCHEDULED
    world.clock.advance(minutes=1)
    assert await world.bus.handle(c.StartDueJobs()) == 1
    assert await world.bus.handle(c.StartDueJobs()) == 0

    assert world.job(build.id, "deploy").status == S.PENDING
    payload = await world.claim(agent)
    assert payload
    assert payload["name"] == "deploy"


# --- cancel, retry, play ------------------------------------------------------------------


async def test_cancel_a_build_through_the_bus(world: World):
    build = await world.trigger(await world.project())
    agent = await world.agent()
    payload = await world.claim(agent)
    assert payload

    await world.bus.handle(c.CancelBuild(build_id=build.id))

    assert world.build(build.id).status == B.CANCELED
    assert world.statuses(build.id) == "compile=canceled unit=canceled"
    [requested] = world.events(JobCancelRequested)
    assert (requested.job_id, requested.agent_id) == (payload["job_id"], agent)
    with pytest.raises(InvalidTransition):
        await world.bus.handle(c.CancelBuild(build_id=build.id))
    with pytest.raises(NotFound):
        await world.bus.handle(c.CancelBuild(build_id="no-such-build"))


async def test_retry_a_failed_build_and_a_single_job(world: World):
    build = await world.trigger(await world.project())
    agent = await world.agent()
    await world.run(agent, exit_code=1)
    assert world.statuses(build.id) == "compile=failed unit=skipped"

    await world.bus.handle(c.RetryBuild(build_id=build.id))
    assert world.statuses(build.id) == "compile=pending unit=created"
    assert world.build(build.id).status == B.RUNNING
    await world.run(agent)
    await world.run(agent)
    assert world.build(build.id).status == B.SUCCESS
    with pytest.raises(InvalidTransition):  # nothing failed
        await world.bus.handle(c.RetryBuild(build_id=build.id))

    unit = world.job(build.id, "unit")
    await world.bus.handle(c.RetryJob(job_id=unit.id))
    payload = await world.run(agent)
    assert (payload["name"], payload["attempt"]) == ("unit", 2)
    assert world.build(build.id).status == B.SUCCESS


async def test_retry_a_canceled_build_runs_its_stages_in_order(world: World):
    build = await world.trigger(await world.project())
    await world.bus.handle(c.CancelBuild(build_id=build.id))
    await world.bus.handle(c.RetryBuild(build_id=build.id))

    assert world.statuses(build.id) == "compile=pending unit=created"
    agent = await world.agent(capacity=2)
    assert (await world.run(agent))["name"] == "compile"
    assert (await world.run(agent))["name"] == "unit"
    assert world.build(build.id).status == B.SUCCESS


async def test_play_a_manual_job(world: World):
    build = await world.trigger(await world.project(MANUAL))
    agent = await world.agent()
    await world.run(agent)
    assert world.statuses(build.id) == "compile=success ship=manual"
    assert world.build(build.id).status == B.SUCCESS  # an optional manual job
    with pytest.raises(InvalidTransition):
        await world.bus.handle(c.PlayJob(job_id=world.job(build.id, "compile").id))
    assert await world.claim(agent) is None

    await world.bus.handle(c.PlayJob(job_id=world.job(build.id, "ship").id))

    assert world.build(build.id).status == B.RUNNING
    assert (await world.run(agent))["name"] == "ship"
    assert world.build(build.id).status == B.SUCCESS
    assert [e.status for e in world.events(BuildCompleted)] == ["success", "success"]


# --- the bus ------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class AddProject(c.Command):
    name: str


async def test_a_handler_that_meets_stale_state_runs_again(world: World, monkeypatch):
    calls = []

    async def flaky_handler(cmd: AddProject, uow: UnitOfWork, deps: Any) -> str:
        calls.append(cmd.name)
        project = Project.create(name=cmd.name, repo_url="/r", default_branch="main", now=T0)
        await uow.projects.add(project)
        if len(calls) < 3:
            raise StaleState("someone else was first")
        await uow.commit()
        return project.id

    monkeypatch.setitem(COMMAND_HANDLERS, AddProject, flaky_handler)
    project_id = await world.bus.handle(AddProject(name="demo"))

    assert calls == ["demo"] * 3
    assert list(world.store.projects) == [project_id]  # the rolled-back tries left nothing
    assert world.kinds() == ["ProjectCreated"]


async def test_stale_state_every_time_gives_up_as_contention(world: World, monkeypatch):
    calls = []

    async def always_stale(cmd: AddProject, uow: UnitOfWork, deps: Any) -> None:
        calls.append(cmd)
        raise StaleState("always")

    monkeypatch.setitem(COMMAND_HANDLERS, AddProject, always_stale)
    monkeypatch.setattr("ferrous.application.messagebus.MAX_PAUSE", 0.001)
    with pytest.raises(Contention, match="AddProject: always"):  # a 503, not a crash
        await world.bus.handle(AddProject(name="demo"))
    assert len(calls) == MAX_ATTEMPTS


async def test_a_concurrent_change_makes_a_command_run_again_on_fresh_state(
    world: World, monkeypatch
):
    """An agent claims a job between CancelBuild's read and its write: the cancel is retried,
    sees the running job, and asks its agent to stop."""
    build = await world.trigger(await world.project())
    agent = await world.agent()
    tries = []

    async def cancel_raced_by_a_claim(cmd: c.CancelBuild, uow: UnitOfWork, deps: Any) -> Any:
        tries.append(cmd)
        if len(tries) == 1:
            save = uow.builds.save

            async def claim_then_save(changed: Any) -> None:
                await world.claim(agent)  # another request commits first
                await save(changed)

            uow.builds.save = claim_then_save  # type: ignore[method-assign]
        return await cancel_build(cmd, uow, deps)

    monkeypatch.setitem(COMMAND_HANDLERS, c.CancelBuild, cancel_raced_by_a_claim)
    await world.bus.handle(c.CancelBuild(build_id=build.id))

    assert len(tries) == 2
    assert world.statuses(build.id) == "compile=canceled unit=canceled"
    [requested] = world.events(JobCancelRequested)
    assert requested.agent_id == agent
    assert world.kinds().count("BuildCompleted") == 1


async def test_hooks_and_event_handlers_run_after_commit(world: World, store: InMemoryStore):
    seen: list[Any] = []

    async def on_created(event: ProjectCreated) -> None:
        seen.append(("event", event.name, event.project_id in store.projects))

    async def after(command: c.CreateProject, result: Project) -> None:
        seen.append(("after", command.name, result.id in store.projects))

    world.bus.subscribe(ProjectCreated, on_created)
    world.bus.after(c.CreateProject, after)
    world.bus.on_events_committed(lambda: seen.append(("nudge",)))

    await world.bus.handle(c.CreateProject(name="demo", repo_url="/r"))
    assert seen == [("nudge",), ("event", "demo", True), ("after", "demo", True)]

    seen.clear()
    agent = await world.agent()
    seen.clear()
    assert await world.claim(agent) is None  # nothing committed: no nudge, no event
    assert seen == []
    with pytest.raises(Conflict):
        await world.bus.handle(c.CreateProject(name="demo", repo_url="/r"))
    assert seen == []  # a refused command runs no hook


async def test_a_failing_event_handler_does_not_undo_the_command(world: World):
    called = []

    async def broken(event: ProjectCreated) -> None:
        raise RuntimeError("listener bug")

    async def fine(event: ProjectCreated) -> None:
        called.append(event.project_id)

    async def after(command: c.CreateProject, result: Project) -> None:
        called.append("after")

    world.bus.subscribe(ProjectCreated, broken)
    world.bus.subscribe(ProjectCreated, fine)
    world.bus.after(c.CreateProject, after)

    project = await world.bus.handle(c.CreateProject(name="demo", repo_url="/r"))

    assert project.id in world.store.projects
    assert called == [project.id, "after"]
    assert world.kinds() == ["ProjectCreated", "PipelineCreated"]
