"""Table tests of the progression rules: small pipelines, their job results, what ``advance``
decides and what the build's status becomes.

Each row: the jobs (stage index, ``when``, ``needs``, ``allow_failure``), the statuses before
(jobs not named are ``created``; a failed job's failure is allowed when it has
``allow_failure``), exactly what ``advance`` decides, and the build status afterwards. The
expected values follow GitLab: ``Ci::ProcessBuildService#valid_statuses_for_build``,
``Gitlab::Ci::Status::Composite#status`` and ``Ci::ResetSkippedJobsService``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pytest

from ferrous.domain.progression import (
    JobNode,
    JobState,
    advance,
    build_status,
    reset_skipped,
    upstream_status,
)
from ferrous.domain.statuses import BuildStatus, JobStatus, When

from .driver import Run, job, parse_statuses

B = BuildStatus
MANUAL, DELAYED, ALWAYS = When.MANUAL, When.DELAYED, When.ALWAYS
ON_FAILURE, NEVER = When.ON_FAILURE, When.NEVER


@dataclass(frozen=True)
class Row:
    id: str
    jobs: Sequence[JobNode]
    before: str
    decided: str
    build: BuildStatus


def states_of(jobs: Sequence[JobNode], before: str) -> dict[str, JobState]:
    given = parse_statuses(before)
    states = {}
    for node in jobs:
        if node.when == NEVER:
            continue
        status = given.get(node.name, JobStatus.CREATED)
        states[node.name] = JobState(status, status == JobStatus.FAILED and node.allow_failure)
    return states


STAGES = [
    Row(
        "first stage starts at once, later stages wait",
        [job("build", 0), job("lint", 0), job("test", 1)],
        "",
        "build=pending lint=pending",
        B.PENDING,
    ),
    Row(
        "a stage waits while an earlier job runs",
        [job("build", 0), job("lint", 0), job("test", 1)],
        "build=success lint=running",
        "",
        B.RUNNING,
    ),
    Row(
        "next stage starts when the earlier stages passed",
        [job("build", 0), job("lint", 0), job("test", 1), job("deploy", 2)],
        "build=success lint=success",
        "test=pending",
        B.RUNNING,
    ),
    Row(
        "a failure skips every later stage",
        [job("build", 0), job("test", 1), job("package", 2), job("deploy", 3)],
        "build=failed",
        "test=skipped package=skipped deploy=skipped",
        B.FAILED,
    ),
    Row(
        "a failure waits for the rest of its stage",
        [job("build", 0), job("lint", 0), job("test", 1)],
        "build=failed lint=running",
        "",
        B.RUNNING,
    ),
    Row(
        "on_failure runs after a failure, on_success is skipped",
        [job("build", 0), job("test", 1), job("cleanup", 1, when=ON_FAILURE)],
        "build=failed",
        "test=skipped cleanup=pending",
        B.RUNNING,
    ),
    Row(
        "on_failure is skipped after a success",
        [job("build", 0), job("test", 1), job("cleanup", 1, when=ON_FAILURE)],
        "build=success",
        "test=pending cleanup=skipped",
        B.RUNNING,
    ),
    Row(
        "on_failure in the first stage is skipped at once",
        [job("test", 0), job("cleanup", 0, when=ON_FAILURE)],
        "",
        "test=pending cleanup=skipped",
        B.PENDING,
    ),
    Row(
        "on_failure sees a failure through skipped stages",
        [job("build", 0), job("test", 1), job("package", 2), job("notify", 3, when=ON_FAILURE)],
        "build=failed",
        "test=skipped package=skipped notify=pending",
        B.RUNNING,
    ),
    Row(
        "always runs after a success",
        [job("build", 0), job("report", 1, when=ALWAYS)],
        "build=success",
        "report=pending",
        B.RUNNING,
    ),
    Row(
        "always runs after a failure",
        [job("build", 0), job("test", 1), job("report", 2, when=ALWAYS)],
        "build=failed",
        "test=skipped report=pending",
        B.RUNNING,
    ),
    Row(
        "always waits for the earlier stages like any job",
        [job("build", 0), job("report", 1, when=ALWAYS)],
        "build=running",
        "",
        B.RUNNING,
    ),
    Row(
        "a stage of only skipped jobs does not stop the pipeline",
        [job("rollback", 0, when=ON_FAILURE), job("test", 1), job("deploy", 2)],
        "",
        "rollback=skipped test=pending",
        B.PENDING,
    ),
    Row(
        "a pipeline of only skipped jobs is skipped",
        [job("a", 0, when=ON_FAILURE), job("b", 1, when=ON_FAILURE)],
        "",
        "a=skipped b=skipped",
        B.SKIPPED,
    ),
    Row(
        "manual and delayed jobs start after skipped-only stages",
        [job("rollback", 0, when=ON_FAILURE), job("m", 1, when=MANUAL), job("d", 1, when=DELAYED)],
        "",
        "rollback=skipped m=manual d=scheduled",
        B.SCHEDULED,
    ),
    Row(
        "manual and delayed jobs are skipped after a failure",
        [job("build", 0), job("m", 1, when=MANUAL), job("d", 1, when=DELAYED)],
        "build=failed",
        "m=skipped d=skipped",
        B.FAILED,
    ),
    Row(
        "a delayed job waits for its time: the build is scheduled",
        [job("build", 0), job("deploy", 1, when=DELAYED), job("after", 2)],
        "build=success",
        "deploy=scheduled",
        B.SCHEDULED,
    ),
    Row(
        "a job waits for a delayed job of an earlier stage",
        [job("deploy", 0, when=DELAYED), job("after", 1)],
        "deploy=scheduled",
        "",
        B.SCHEDULED,
    ),
    Row(
        "a job waits for one waiting on its resource group",
        [job("deploy", 0), job("after", 1)],
        "deploy=waiting",
        "",
        B.WAITING,
    ),
]

ALLOW_FAILURE = [
    Row(
        "an allowed failure counts as a success",
        [job("lint", 0, allow_failure=True), job("test", 1), job("cleanup", 1, when=ON_FAILURE)],
        "lint=failed",
        "test=pending cleanup=skipped",
        B.PENDING,
    ),
    Row(
        "a build whose only failures are allowed passes",
        [job("lint", 0, allow_failure=True), job("test", 1)],
        "lint=failed test=success",
        "",
        B.SUCCESS,
    ),
    Row(
        "an allowed failure beside a real one: the real one wins",
        [job("lint", 0, allow_failure=True), job("build", 0), job("cleanup", 1, when=ON_FAILURE)],
        "lint=failed build=failed",
        "cleanup=pending",
        B.RUNNING,
    ),
    Row(
        "a canceled job skips what comes after, even always",
        [
            job("build", 0),
            job("test", 1),
            job("cleanup", 1, when=ON_FAILURE),
            job("report", 1, when=ALWAYS),
        ],
        "build=canceled",
        "test=skipped cleanup=skipped report=skipped",
        B.CANCELED,
    ),
    Row(
        "a canceled job with allow_failure counts as a success",
        [job("build", 0, allow_failure=True), job("test", 1), job("cleanup", 1, when=ON_FAILURE)],
        "build=canceled",
        "test=pending cleanup=skipped",
        B.PENDING,
    ),
    Row(
        "failed and canceled: failed wins",
        [
            job("a", 0),
            job("b", 0),
            job("cleanup", 1, when=ON_FAILURE),
            job("report", 1, when=ALWAYS),
        ],
        "a=failed b=canceled",
        "cleanup=pending report=pending",
        B.RUNNING,
    ),
    Row(
        "canceled beside successes cancels the build",
        [job("a", 0), job("b", 0), job("c", 1)],
        "a=success b=canceled",
        "c=skipped",
        B.CANCELED,
    ),
]

MANUAL_JOBS = [
    Row(
        "a non-blocking manual job does not hold up later stages",
        [job("build", 0), job("deploy", 1, when=MANUAL), job("notify", 2)],
        "build=success",
        "deploy=manual notify=pending",
        B.RUNNING,
    ),
    Row(
        "a blocking manual job holds up later stages: the build is blocked",
        [job("build", 0), job("deploy", 1, when=MANUAL, allow_failure=False), job("notify", 2)],
        "build=success",
        "deploy=manual",
        B.MANUAL,
    ),
    Row(
        "a blocked build is running while other jobs run",
        [job("gate", 0, when=MANUAL, allow_failure=False), job("test", 0), job("deploy", 1)],
        "test=running",
        "gate=manual",
        B.RUNNING,
    ),
    Row(
        "a blocking manual job beside a failure still blocks",
        [job("gate", 0, when=MANUAL, allow_failure=False), job("test", 0), job("deploy", 1)],
        "gate=manual test=failed",
        "",
        B.MANUAL,
    ),
    Row(
        "a pipeline of one unplayed optional manual job is skipped",
        [job("deploy", 0, when=MANUAL)],
        "",
        "deploy=manual",
        B.SKIPPED,
    ),
    Row(
        "an unplayed optional manual job does not change a finished build",
        [job("build", 0), job("deploy", 0, when=MANUAL)],
        "build=success deploy=manual",
        "",
        B.SUCCESS,
    ),
    Row(
        "a later stage after only optional manual jobs starts (they count as skipped)",
        [job("deploy", 0, when=MANUAL), job("notify", 1), job("on_fail", 1, when=ON_FAILURE)],
        "",
        "deploy=manual notify=pending on_fail=skipped",
        B.PENDING,
    ),
    Row(
        "a played manual job that fails is allowed to (by default)",
        [job("deploy", 0, when=MANUAL), job("notify", 1)],
        "deploy=failed notify=success",
        "",
        B.SUCCESS,
    ),
    Row(
        "a played blocking manual job that fails fails the build",
        [job("deploy", 0, when=MANUAL, allow_failure=False), job("notify", 1)],
        "deploy=failed",
        "notify=skipped",
        B.FAILED,
    ),
]

DAG = [
    Row(
        "needs: [] starts at once, whatever runs in earlier stages",
        [job("build", 0), job("lint", 1, needs=[])],
        "build=running",
        "lint=pending",
        B.RUNNING,
    ),
    Row(
        "needs: [] with on_failure is skipped at once",
        [job("build", 0), job("rescue", 1, when=ON_FAILURE, needs=[])],
        "build=running",
        "rescue=skipped",
        B.RUNNING,
    ),
    Row(
        "a job waits for its needs only, not for the rest of the earlier stages",
        [job("build", 0), job("slow", 0), job("test", 1, needs=["build"]), job("deploy", 2)],
        "build=success slow=running",
        "test=pending",
        B.RUNNING,
    ),
    Row(
        "a job waits while a need runs",
        [job("build", 0), job("test", 1, needs=["build"])],
        "build=running",
        "",
        B.RUNNING,
    ),
    Row(
        "a failed need skips the job, and the skip cascades down the chain",
        [
            job("build", 0),
            job("test", 1, needs=["build"]),
            job("package", 2, needs=["test"]),
            job("deploy", 3, needs=["package"]),
        ],
        "build=failed",
        "test=skipped package=skipped deploy=skipped",
        B.FAILED,
    ),
    Row(
        "a skipped need skips the job (stage mode would run it)",
        [
            job("rollback", 0, when=ON_FAILURE),
            job("dag", 1, needs=["rollback"]),
            job("staged", 1),
        ],
        "",
        "rollback=skipped dag=skipped staged=pending",
        B.PENDING,
    ),
    Row(
        "a skipped need skips the job even while another need still runs",
        [job("a", 0), job("b", 0, when=ON_FAILURE), job("c", 1, needs=["a", "b"])],
        "a=running",
        "b=skipped c=skipped",
        B.RUNNING,
    ),
    Row(
        "always with a skipped need starts even while another need still runs",
        [job("a", 0), job("b", 0, when=ON_FAILURE), job("c", 1, when=ALWAYS, needs=["a", "b"])],
        "a=running",
        "b=skipped c=pending",
        B.RUNNING,
    ),
    Row(
        "on_failure with a failed need runs",
        [job("build", 0), job("rescue", 1, when=ON_FAILURE, needs=["build"])],
        "build=failed",
        "rescue=pending",
        B.RUNNING,
    ),
    Row(
        "on_failure with a failed need and a skipped one is skipped",
        [
            job("build", 0),
            job("opt", 0, when=ON_FAILURE),
            job("rescue", 1, when=ON_FAILURE, needs=["build", "opt"]),
        ],
        "build=failed opt=skipped",
        "rescue=skipped",
        B.FAILED,
    ),
    Row(
        "on_failure with an allowed failure need is skipped",
        [
            job("build", 0, allow_failure=True),
            job("rescue", 1, when=ON_FAILURE, needs=["build"]),
        ],
        "build=failed",
        "rescue=skipped",
        B.SUCCESS,
    ),
    Row(
        "always with a canceled need is skipped",
        [job("build", 0), job("report", 1, when=ALWAYS, needs=["build"])],
        "build=canceled",
        "report=skipped",
        B.CANCELED,
    ),
    Row(
        "a need on a non-blocking manual job skips the job",
        [job("build", 0), job("deploy", 1, when=MANUAL), job("smoke", 2, needs=["deploy"])],
        "build=success",
        "deploy=manual smoke=skipped",
        B.SUCCESS,
    ),
    Row(
        "a need on a blocking manual job waits for it",
        [
            job("build", 0),
            job("deploy", 1, when=MANUAL, allow_failure=False),
            job("smoke", 2, needs=["deploy"]),
        ],
        "build=success",
        "deploy=manual",
        B.MANUAL,
    ),
    Row(
        "manual and delayed jobs with needs start on success",
        [
            job("build", 0),
            job("m", 1, when=MANUAL, needs=["build"]),
            job("d", 1, when=DELAYED, needs=["build"]),
        ],
        "build=success",
        "m=manual d=scheduled",
        B.SCHEDULED,
    ),
    Row(
        "a need on a job of the same stage",
        [job("build", 0), job("test", 0, needs=["build"])],
        "build=success",
        "test=pending",
        B.RUNNING,
    ),
    Row(
        "a stage-mode job waits for a DAG job of an earlier stage",
        [job("build", 0), job("fast", 1, needs=[]), job("deploy", 2)],
        "build=success fast=running",
        "",
        B.RUNNING,
    ),
]

NEVER_JOBS = [
    Row(
        "when: never jobs are not decided and do not hold up anything",
        [job("build", 0), job("docs", 0, when=NEVER), job("test", 1)],
        "build=success",
        "test=pending",
        B.RUNNING,
    ),
    Row(
        "a need on a when: never job (an optional need) is left out",
        [job("build", 0, when=NEVER), job("test", 1, needs=["build"])],
        "",
        "test=pending",
        B.PENDING,
    ),
    Row(
        "a build of only when: never jobs has nothing to run",
        [job("docs", 0, when=NEVER)],
        "",
        "",
        B.SKIPPED,
    ),
]


def _params(rows: Sequence[Row]) -> list[object]:
    return [pytest.param(row, id=row.id) for row in rows]


@pytest.mark.parametrize("row", _params(STAGES + ALLOW_FAILURE + MANUAL_JOBS + DAG + NEVER_JOBS))
def test_advance_and_build_status(row: Row) -> None:
    nodes = {node.name: node for node in row.jobs}
    states = states_of(row.jobs, row.before)

    decided = advance(nodes, states)

    assert decided == parse_statuses(row.decided)
    after = states | {name: JobState(status) for name, status in decided.items()}
    assert build_status(nodes.values(), after) == row.build


def test_a_decision_that_releases_another_job_is_followed_whatever_the_order() -> None:
    # deploy becoming a non-blocking manual job releases notify in the same call, even when
    # notify comes first in the mapping.
    jobs = [job("notify", 1), job("deploy", 0, when=MANUAL)]
    nodes = {n.name: n for n in jobs}
    states = states_of(jobs, "")
    assert advance(nodes, states) == {"deploy": JobStatus.MANUAL, "notify": JobStatus.PENDING}


def test_failure_allowed_by_exit_code_counts_as_success() -> None:
    # `allow_failure: {exit_codes: [3]}`: the static allow_failure is false, the job failed
    # with exit code 3, so the aggregate marks the failure allowed.
    nodes = {n.name: n for n in [job("lint", 0), job("test", 1)]}
    states = {
        "lint": JobState(JobStatus.FAILED, failure_allowed=True),
        "test": JobState(JobStatus.CREATED),
    }

    assert advance(nodes, states) == {"test": JobStatus.PENDING}
    assert upstream_status(nodes["test"], nodes, states) == "success"


def test_a_failure_not_marked_allowed_is_a_failure_even_with_allow_failure() -> None:
    # Only the aggregate knows the exit code, so a failed job counts by its failure_allowed.
    nodes = {n.name: n for n in [job("lint", 0, allow_failure=True), job("test", 1)]}
    states = {"lint": JobState(JobStatus.FAILED), "test": JobState(JobStatus.CREATED)}

    assert advance(nodes, states) == {"test": JobStatus.SKIPPED}


@pytest.mark.parametrize(
    ("before", "expected"),
    [
        ("a=running b=created", "wait"),
        ("a=success b=manual", "wait"),  # b is a blocking manual job
        ("a=success b=scheduled", "wait"),
        ("a=success b=waiting", "wait"),
        ("a=success b=success", "success"),
        ("a=success b=skipped", "success"),
        ("a=skipped b=skipped", "skipped"),
        ("a=failed b=success", "failed"),
        ("a=failed b=canceled", "failed"),
        ("a=canceled b=skipped", "canceled"),
    ],
)
def test_upstream_status_in_stage_mode(before: str, expected: str) -> None:
    jobs = [job("a", 0), job("b", 0, when=MANUAL, allow_failure=False), job("c", 1)]
    nodes = {n.name: n for n in jobs}
    assert upstream_status(nodes["c"], nodes, states_of(jobs, before)) == expected


def test_upstream_status_of_no_upstream_is_success() -> None:
    nodes = {"a": job("a", 0), "b": job("b", 3, needs=[])}
    states = states_of(list(nodes.values()), "")
    assert upstream_status(nodes["a"], nodes, states) == "success"
    assert upstream_status(nodes["b"], nodes, states) == "success"


# --- build status -------------------------------------------------------------------------

# A job is "<status>", "<status>/allowed" (allow_failure: true) or "manual/blocking".
BUILD_STATUS_TABLE = [
    ("success success", B.SUCCESS),
    ("success failed/allowed", B.SUCCESS),
    ("success canceled/allowed", B.SUCCESS),
    ("failed/allowed", B.SUCCESS),
    ("skipped", B.SKIPPED),
    ("skipped manual", B.SKIPPED),
    ("success skipped manual", B.SUCCESS),
    ("created", B.CREATED),
    ("created manual", B.CREATED),
    ("created skipped", B.PENDING),
    ("pending", B.PENDING),
    ("pending created skipped failed/allowed manual", B.PENDING),
    ("pending success", B.RUNNING),
    ("pending failed", B.RUNNING),
    ("running", B.RUNNING),
    ("running manual/blocking", B.RUNNING),
    ("created success", B.RUNNING),
    ("created failed", B.RUNNING),
    ("waiting success", B.WAITING),
    ("waiting manual/blocking", B.WAITING),
    ("manual/blocking", B.MANUAL),
    ("manual/blocking success", B.MANUAL),
    ("manual/blocking failed", B.MANUAL),
    ("manual/blocking scheduled", B.MANUAL),
    ("manual/blocking created", B.MANUAL),
    ("scheduled success", B.SCHEDULED),
    ("scheduled created", B.SCHEDULED),
    ("failed success", B.FAILED),
    ("failed canceled", B.FAILED),
    ("failed skipped manual", B.FAILED),
    ("canceled success", B.CANCELED),
    ("canceled skipped manual", B.CANCELED),
]


@pytest.mark.parametrize(("jobs", "expected"), BUILD_STATUS_TABLE)
def test_build_status(jobs: str, expected: BuildStatus) -> None:
    nodes, states = [], {}
    for index, spec in enumerate(jobs.split()):
        status, _, flag = spec.partition("/")
        name = f"j{index}"
        if status == "manual":
            nodes.append(job(name, when=MANUAL, allow_failure=flag != "blocking"))
        else:
            nodes.append(job(name, allow_failure=flag == "allowed"))
        states[name] = JobState(JobStatus(status), failure_allowed=flag == "allowed")
    assert build_status(nodes, states) == expected


@pytest.mark.parametrize(
    ("previous", "expected"),
    [
        (None, B.PENDING),
        (B.CREATED, B.PENDING),
        (B.PENDING, B.PENDING),
        (B.SKIPPED, B.PENDING),
        (B.MANUAL, B.PENDING),
        (B.RUNNING, B.RUNNING),
        (B.SUCCESS, B.RUNNING),
        (B.FAILED, B.RUNNING),
        (B.CANCELED, B.RUNNING),
    ],
)
def test_a_build_that_has_run_goes_back_to_running_not_pending(
    previous: BuildStatus | None, expected: BuildStatus
) -> None:
    # Ci::Pipeline's `enqueue` event: created/skipped/manual... -> pending, but
    # success/failed/canceled -> running, and running stays running.
    nodes = [job("a"), job("b", 1)]
    states = {"a": JobState(JobStatus.PENDING), "b": JobState(JobStatus.CREATED)}
    assert build_status(nodes, states, previous=previous) == expected


def test_jobs_all_created_leave_the_build_status_as_it_was() -> None:
    nodes = [job("a"), job("b", 1)]
    states = {"a": JobState(JobStatus.CREATED), "b": JobState(JobStatus.CREATED)}
    assert build_status(nodes, states) == B.CREATED
    assert build_status(nodes, states, previous=B.FAILED) == B.FAILED


# --- playing manual jobs and retrying: skipped jobs come back -----------------------------


def test_playing_a_blocking_manual_job_releases_the_later_stages() -> None:
    run = Run([job("build", 0), job("gate", 1, when=MANUAL, allow_failure=False), job("deploy", 2)])
    run.start()
    run.succeed("build")
    assert (run.build, run.statuses()) == (
        B.MANUAL,
        parse_statuses("build=success gate=manual deploy=created"),
    )

    run.play("gate")
    assert (run.build, run.status_of("deploy")) == (B.RUNNING, JobStatus.CREATED)
    run.succeed("gate")
    assert (run.build, run.status_of("deploy")) == (B.RUNNING, JobStatus.PENDING)
    run.succeed("deploy")
    assert run.build == B.SUCCESS


def test_a_played_blocking_manual_job_that_fails_skips_the_later_stages() -> None:
    run = Run([job("gate", 0, when=MANUAL, allow_failure=False), job("deploy", 1)]).start()
    run.play("gate")
    run.fail("gate")
    assert (run.build, run.status_of("deploy")) == (B.FAILED, JobStatus.SKIPPED)


def test_playing_an_optional_manual_job_brings_back_the_jobs_that_need_it() -> None:
    run = Run(
        [
            job("build", 0),
            job("deploy", 1, when=MANUAL),
            job("smoke", 2, needs=["deploy"]),
            job("report", 3, needs=["smoke"]),
        ]
    ).start()
    run.succeed("build")
    assert (run.build, run.statuses()) == (
        B.SUCCESS,
        parse_statuses("build=success deploy=manual smoke=skipped report=skipped"),
    )

    run.play("deploy")
    assert (run.build, run.statuses()) == (
        B.RUNNING,
        parse_statuses("build=success deploy=pending smoke=created report=created"),
    )
    run.succeed("deploy")
    run.succeed("smoke")
    run.succeed("report")
    assert run.build == B.SUCCESS


def test_retrying_a_failed_job_brings_back_the_later_stages() -> None:
    run = Run([job("build", 0), job("test", 1), job("deploy", 2)]).start()
    run.fail("build")
    assert run.build == B.FAILED
    run.retry("build")
    assert (run.build, run.statuses()) == (
        B.RUNNING,
        parse_statuses("build=pending test=created deploy=created"),
    )
    run.succeed("build")
    assert run.status_of("test") == JobStatus.PENDING


@pytest.mark.parametrize(
    ("restarted", "expected"),
    [
        # later stages' skipped jobs, whether they depend on it or not
        ("b", "c d e"),
        # a DAG dependent in the same stage, and its dependents, transitively
        ("a", "a2 c d e"),
        # nothing of an earlier stage or of the same stage that does not need it
        ("c", "d e"),
        ("e", ""),
    ],
)
def test_reset_skipped_selects_what_gitlab_resets(restarted: str, expected: str) -> None:
    jobs = [
        job("a", 0),
        job("a2", 0, needs=["a"]),
        job("side", 0),
        job("b", 1),
        job("c", 2, needs=["a2"]),
        job("d", 3),
        job("e", 3, needs=["c"]),
        job("gone", 3, when=NEVER),
    ]
    nodes = {n.name: n for n in jobs}
    before = "a=failed a2=skipped side=skipped b=failed c=skipped d=skipped e=skipped"
    states = states_of(jobs, f"{before} {restarted}=pending")  # as right after a retry
    reset = reset_skipped(nodes, states, [restarted])
    assert reset == dict.fromkeys(expected.split(), JobStatus.CREATED)


def test_reset_skipped_of_no_known_job_resets_nothing() -> None:
    nodes = {"a": job("a", 0), "b": job("b", 1)}
    states = states_of(list(nodes.values()), "a=failed b=skipped")
    assert reset_skipped(nodes, states, ["unknown"]) == {}
    assert reset_skipped(nodes, states, []) == {}


def test_reset_skipped_leaves_jobs_that_are_not_skipped() -> None:
    jobs = [job("a", 0), job("b", 1), job("c", 1, when=MANUAL), job("d", 2)]
    nodes = {n.name: n for n in jobs}
    states = states_of(jobs, "a=pending b=success c=manual d=created")
    assert reset_skipped(nodes, states, ["a"]) == {}
