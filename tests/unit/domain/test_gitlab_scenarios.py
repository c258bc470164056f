"""GitLab's own pipeline processing scenarios, replayed through the progression rules.

Each case is one of the YAML test cases GitLab runs against ``AtomicProcessingService``
(gitlab-org/gitlab, ``spec/services/ci/pipeline_processing/test_cases/<name>.yml``), rewritten
as data: the jobs, the statuses right after the pipeline is created, then events (a job
succeeds, fails, is canceled, played or retried) each followed by the statuses GitLab expects
for the pipeline and every job. Stage statuses are left out (Ferrous has no stage status), and
so are the cases about auto-cancel and retrying a whole pipeline, which are other services.
Stage names become indexes; jobs without a stage are in ``test`` (index 0 here).
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from ferrous.domain.progression import JobNode
from ferrous.domain.statuses import BuildStatus, When

from .driver import Run, job, parse_statuses

MANUAL, DELAYED, ALWAYS = When.MANUAL, When.DELAYED, When.ALWAYS
ON_FAILURE, NEVER = When.ON_FAILURE, When.NEVER


def case(name: str, jobs: Sequence[JobNode], init: str, *steps: tuple[str, str]) -> object:
    return pytest.param(jobs, init, steps, id=name)


CASES = [
    # --- stage mode -------------------------------------------------------------------------
    case(
        "stage_build_fails",
        [job("build", 0), job("test", 1), job("deploy", 2)],
        "pending: build=pending test=created deploy=created",
        ("drop build", "failed: build=failed test=skipped deploy=skipped"),
    ),
    case(
        "stage_build_fails_test_allow_failure",
        [job("build", 0), job("test", 1, allow_failure=True), job("deploy", 2)],
        "pending: build=pending test=created deploy=created",
        ("drop build", "failed: build=failed test=skipped deploy=skipped"),
    ),
    case(
        "stage_build_fails_with_allow_failure_test_on_failure",
        [job("build", 0, allow_failure=True), job("test", 1, when=ON_FAILURE), job("deploy", 2)],
        "pending: build=pending test=created deploy=created",
        ("drop build", "pending: build=failed test=skipped deploy=pending"),
        ("success deploy", "success: build=failed test=skipped deploy=success"),
    ),
    case(
        "stage_build_cancels_test1_and_test2_have_when",
        [job("build", 0), job("test1", 1), job("test2", 1, when=ON_FAILURE), job("deploy", 2)],
        "pending: build=pending test1=created test2=created deploy=created",
        ("cancel build", "canceled: build=canceled test1=skipped test2=skipped deploy=skipped"),
    ),
    case(
        "stage_build_cancels_with_allow_failure_test1_and_test2_have_when",
        [
            job("build", 0, allow_failure=True),
            job("test1", 1),
            job("test2", 1, when=ON_FAILURE),
            job("deploy", 2),
        ],
        "pending: build=pending test1=created test2=created deploy=created",
        ("cancel build", "pending: build=canceled test1=pending test2=skipped deploy=created"),
    ),
    case(
        "stage_build_succeeds_test_manual_allow_failure_true",
        [job("build", 0), job("test", 1, when=MANUAL), job("deploy", 2)],
        "pending: build=pending test=created deploy=created",
        ("success build", "running: build=success test=manual deploy=pending"),
    ),
    case(
        "stage_build_test_manual_review_deploy",
        [
            job("build", 0),
            job("test", 1),
            job("release_test", 1, when=MANUAL),
            job("review", 2),
            job("staging", 3),
            job("production", 3),
        ],
        "pending: build=pending test=created release_test=created review=created"
        " staging=created production=created",
        (
            "success build",
            "running: build=success test=pending release_test=manual review=created"
            " staging=created production=created",
        ),
        (
            "success test",
            "running: build=success test=success release_test=manual review=pending"
            " staging=created production=created",
        ),
    ),
    case(
        "stage_one_test_succeeds_one_manual_test_fails_and_retry_manual_build",
        [job("test1"), job("test2", when=MANUAL)],
        "pending: test1=pending test2=manual",
        ("success test1", "success: test1=success test2=manual"),
        ("play test2", "running: test1=success test2=pending"),
        ("drop test2", "success: test1=success test2=failed"),
        ("retry test2", "running: test1=success test2=pending"),
    ),
    case(
        "stage_test_manual_allow_failure_false",
        [job("test", 0, when=MANUAL, allow_failure=False), job("deploy", 1)],
        "manual: test=manual deploy=created",
        ("play test", "pending: test=pending deploy=created"),
        ("run test", "running: test=running deploy=created"),
        ("success test", "running: test=success deploy=pending"),
        ("success deploy", "success: test=success deploy=success"),
    ),
    case(
        "stage_test_manual_allow_failure_true",
        [job("test", 0, when=MANUAL), job("deploy", 1)],
        "pending: test=manual deploy=pending",
        ("success deploy", "success: test=manual deploy=success"),
        ("play test", "running: test=pending deploy=success"),
        ("drop test", "success: test=failed deploy=success"),
    ),
    case(
        "stage_test_manual_allow_failure_true_deploy_always",
        [job("test", 0, when=MANUAL), job("deploy", 1, when=ALWAYS)],
        "pending: test=manual deploy=pending",
    ),
    case(
        "stage_test_manual_allow_failure_true_deploy_on_failure",
        [job("test", 0, when=MANUAL), job("deploy", 1, when=ON_FAILURE)],
        "skipped: test=manual deploy=skipped",
        ("play test", "pending: test=pending deploy=created"),
        ("drop test", "success: test=failed deploy=skipped"),
    ),
    case(
        "stage_test_on_failure_no_prev_stage",
        [job("test1"), job("test2", when=ON_FAILURE)],
        "pending: test1=pending test2=skipped",
        ("success test1", "success: test1=success test2=skipped"),
    ),
    case(
        "stage_test_on_failure_with_failure",
        [job("build", 0), job("test", 1, when=ON_FAILURE), job("deploy", 2)],
        "pending: build=pending test=created deploy=created",
        ("drop build", "running: build=failed test=pending deploy=created"),
        ("success test", "failed: build=failed test=success deploy=skipped"),
    ),
    case(
        "stage_test_on_failure_with_success",
        [job("build", 0), job("test", 1, when=ON_FAILURE), job("deploy", 2)],
        "pending: build=pending test=created deploy=created",
        ("success build", "running: build=success test=skipped deploy=pending"),
        ("success deploy", "success: build=success test=skipped deploy=success"),
    ),
    # --- DAG mode ---------------------------------------------------------------------------
    case(
        "dag_build_fails",
        [job("build", 0), job("test", 1, needs=["build"]), job("deploy", 2)],
        "pending: build=pending test=created deploy=created",
        ("drop build", "failed: build=failed test=skipped deploy=skipped"),
    ),
    case(
        "dag_build_fails_deploy_needs_test",
        [job("build", 0), job("test", 1), job("deploy", 2, needs=["test"])],
        "pending: build=pending test=created deploy=created",
        ("drop build", "failed: build=failed test=skipped deploy=skipped"),
    ),
    case(
        "dag_build_fails_deploy_is_delayed_and_needs_test",
        [job("build", 0), job("test", 1), job("deploy", 2, when=DELAYED, needs=["test"])],
        "pending: build=pending test=created deploy=created",
        ("drop build", "failed: build=failed test=skipped deploy=skipped"),
    ),
    case(
        "dag_build_fails_deploy_is_manual_and_needs_test",
        [job("build", 0), job("test", 1), job("deploy", 2, when=MANUAL, needs=["test"])],
        "pending: build=pending test=created deploy=created",
        ("drop build", "failed: build=failed test=skipped deploy=skipped"),
    ),
    case(
        "dag_build_fails_deploy_needs_test_when_always",
        [job("build", 0), job("test", 1), job("deploy", 2, when=ALWAYS, needs=["test"])],
        "pending: build=pending test=created deploy=created",
        ("drop build", "running: build=failed test=skipped deploy=pending"),
    ),
    case(
        "dag_build_fails_other_build_succeeds_deploy_always",
        [
            job("build_1", 0),
            job("build_2", 0),
            job("test", 1),
            job("deploy", 2, when=ALWAYS, needs=["build_1", "test"]),
        ],
        "pending: build_1=pending build_2=pending test=created deploy=created",
        ("success build_1", "running: build_1=success build_2=pending test=created deploy=created"),
        ("drop build_2", "running: build_1=success build_2=failed test=skipped deploy=pending"),
    ),
    case(
        "dag_build_fails_other_build_succeeds_deploy_needs_one_build_and_test",
        [
            job("build_1", 0),
            job("build_2", 0),
            job("test", 1),
            job("deploy", 2, needs=["build_1", "test"]),
        ],
        "pending: build_1=pending build_2=pending test=created deploy=created",
        ("success build_1", "running: build_1=success build_2=pending test=created deploy=created"),
        ("drop build_2", "failed: build_1=success build_2=failed test=skipped deploy=skipped"),
    ),
    case(
        "dag_build_fails_test_always",
        [job("build", 0), job("test", 1, when=ALWAYS, needs=["build"])],
        "pending: build=pending test=created",
        ("drop build", "running: build=failed test=pending"),
    ),
    case(
        "dag_build_fails_test_fails_with_allow_failure",
        [job("build", 0), job("test", 1, allow_failure=True), job("deploy", 2, needs=["test"])],
        "pending: build=pending test=created deploy=created",
        ("drop build", "failed: build=failed test=skipped deploy=skipped"),
    ),
    case(
        "dag_build_fails_test_on_failure",
        [job("build", 0), job("test", 1, when=ON_FAILURE, needs=["build"])],
        "pending: build=pending test=created",
        ("drop build", "running: build=failed test=pending"),
    ),
    case(
        "dag_build_fails_test_on_failure_deploy_needs_test",
        [job("build", 0), job("test", 1, when=ON_FAILURE), job("deploy", 2, needs=["test"])],
        "pending: build=pending test=created deploy=created",
        ("drop build", "running: build=failed test=pending deploy=created"),
        ("success test", "running: build=failed test=success deploy=pending"),
        ("success deploy", "failed: build=failed test=success deploy=success"),
    ),
    case(
        "dag_build_fails_test_skips_rollback_on_failure",
        [
            job("build", 0),
            job("test", 1),
            job("deploy", 2, needs=["build", "test"]),
            job("rollback", 2, when=ON_FAILURE, needs=["build", "test"]),
        ],
        "pending: build=pending test=created deploy=created rollback=created",
        ("drop build", "failed: build=failed test=skipped deploy=skipped rollback=skipped"),
    ),
    case(
        "dag_build_fails_with_allow_failure_test_on_failure",
        [
            job("build", 0, allow_failure=True),
            job("test", 1, when=ON_FAILURE, needs=["build"]),
            job("deploy", 2, needs=["test"]),
        ],
        "pending: build=pending test=created deploy=created",
        ("drop build", "success: build=failed test=skipped deploy=skipped"),
    ),
    case(
        "dag_build_rules_out_test_needs_build_with_optional",
        [job("build", 0, when=NEVER), job("test", 1, needs=["build"])],
        "pending: test=pending",
        ("success test", "success: test=success"),
    ),
    case(
        "dag_build2_build1_rules_out_test_needs_build1_with_optional",
        [job("build1", 0, when=NEVER), job("build2", 0), job("test", 1, needs=["build1"])],
        "pending: build2=pending test=pending",
        ("success test", "running: build2=pending test=success"),
        ("success build2", "success: build2=success test=success"),
    ),
    case(
        "dag_build_succeeds_test_on_failure",
        [job("build", 0), job("test", 1, when=ON_FAILURE, needs=["build"])],
        "pending: build=pending test=created",
        ("success build", "success: build=success test=skipped"),
    ),
    case(
        "dag_build_succeds_test_manual_allow_failure_true_deploy_needs_both",
        [job("build", 0), job("test", 1, when=MANUAL), job("deploy", 2, needs=["build", "test"])],
        "pending: build=pending test=created deploy=created",
        ("success build", "success: build=success test=manual deploy=skipped"),
    ),
    case(
        "dag_build_succeds_test_manual_allow_failure_true_deploy_needs_test",
        [job("build", 0), job("test", 1, when=MANUAL), job("deploy", 2, needs=["test"])],
        "pending: build=pending test=created deploy=created",
        ("success build", "success: build=success test=manual deploy=skipped"),
    ),
    case(
        "dag_build_test_manual_review_deploy",
        [
            job("build", 0),
            job("test", 1),
            job("release_test", 1, when=MANUAL),
            job("review", 2, needs=["test", "release_test"]),
            job("staging", 3, needs=["test", "release_test"]),
            job("production", 3, needs=["review"]),
        ],
        "pending: build=pending test=created release_test=created review=created"
        " staging=created production=created",
        (
            "success build",
            "running: build=success test=pending release_test=manual review=skipped"
            " staging=skipped production=skipped",
        ),
        (
            "success test",
            "success: build=success test=success release_test=manual review=skipped"
            " staging=skipped production=skipped",
        ),
    ),
    case(
        "dag_build_test_two_manual_review_test_staging_production",
        [
            job("build", 0),
            job("test", 1),
            job("release_test1", 1, when=MANUAL),
            job("release_test2", 1, when=MANUAL),
            job("review", 2, needs=["test", "release_test1", "release_test2"]),
            job("staging", 3, needs=["release_test1"]),
            job("production", 3, needs=["release_test2"]),
            job("after_deploy", 4, needs=["production"]),
            job("handle_failure", 4, when=ON_FAILURE),
        ],
        "pending: build=pending test=created release_test1=created release_test2=created"
        " review=created staging=created production=created after_deploy=created"
        " handle_failure=created",
        (
            "success build",
            "running: build=success test=pending release_test1=manual release_test2=manual"
            " review=skipped staging=skipped production=skipped after_deploy=skipped"
            " handle_failure=created",
        ),
        (
            "success test",
            "success: build=success test=success release_test1=manual release_test2=manual"
            " review=skipped staging=skipped production=skipped after_deploy=skipped"
            " handle_failure=skipped",
        ),
        (
            "play release_test1",
            "running: build=success test=success release_test1=pending release_test2=manual"
            " review=skipped staging=created production=skipped after_deploy=skipped"
            " handle_failure=created",
        ),
        (
            "success release_test1",
            "running: build=success test=success release_test1=success release_test2=manual"
            " review=skipped staging=pending production=skipped after_deploy=skipped"
            " handle_failure=created",
        ),
        (
            "success staging",
            "success: build=success test=success release_test1=success release_test2=manual"
            " review=skipped staging=success production=skipped after_deploy=skipped"
            " handle_failure=skipped",
        ),
    ),
    case(
        "dag_builds_succeed_test_on_failure_deploy_needs_one_build_and_test",
        [
            job("build_1", 0),
            job("build_2", 0),
            job("test", 1, when=ON_FAILURE),
            job("deploy", 2, needs=["build_1", "test"]),
        ],
        "pending: build_1=pending build_2=pending test=created deploy=created",
        (
            "success build_1 build_2",
            "success: build_1=success build_2=success test=skipped deploy=skipped",
        ),
    ),
    case(
        "dag_builds_succeed_test_on_failure_deploy_needs_one_build_and_test_when_always",
        [
            job("build_1", 0),
            job("build_2", 0),
            job("test", 1, when=ON_FAILURE),
            job("deploy", 2, when=ALWAYS, needs=["build_1", "test"]),
        ],
        "pending: build_1=pending build_2=pending test=created deploy=created",
        (
            "success build_1 build_2",
            "running: build_1=success build_2=success test=skipped deploy=pending",
        ),
        (
            "success deploy",
            "success: build_1=success build_2=success test=skipped deploy=success",
        ),
    ),
    case(
        "dag_deploy_needs_empty",
        [job("build", 0), job("test", 1), job("deploy", 2, needs=[])],
        "pending: build=pending test=created deploy=pending",
    ),
    case(
        "dag_same_stage_with_fail_and_retry_1",
        [job("build"), job("test", needs=["build"]), job("deploy", needs=["test"])],
        "pending: build=pending test=created deploy=created",
        ("drop build", "failed: build=failed test=skipped deploy=skipped"),
        ("retry build", "running: build=pending test=created deploy=created"),
        ("success build", "running: build=success test=pending deploy=created"),
    ),
    case(
        "dag_same_stage_with_fail_and_retry_2",
        [
            job("build"),
            job("test1", needs=["build"]),
            job("test2", when=MANUAL),
            job("deploy", needs=["test1", "test2"]),
        ],
        "pending: build=pending test1=created test2=manual deploy=skipped",
        ("drop build", "failed: build=failed test1=skipped test2=manual deploy=skipped"),
        ("retry build", "running: build=pending test1=created test2=manual deploy=skipped"),
        ("success build", "running: build=success test1=pending test2=manual deploy=skipped"),
    ),
    case(
        "dag_same_stage_with_subsequent_manual_jobs",
        [
            job("job1", when=MANUAL),
            job("job2", needs=["job1"]),
            job("job3", when=MANUAL, needs=["job2"]),
            job("job4", needs=["job3"]),
        ],
        "skipped: job1=manual job2=skipped job3=skipped job4=skipped",
        ("play job1", "pending: job1=pending job2=created job3=created job4=created"),
        ("success job1", "running: job1=success job2=pending job3=created job4=created"),
        ("success job2", "success: job1=success job2=success job3=manual job4=skipped"),
    ),
    case(
        "dag_same_stages",
        [job("build"), job("test", needs=["build"]), job("deploy", needs=["test"])],
        "pending: build=pending test=created deploy=created",
        ("success build", "running: build=success test=pending deploy=created"),
        ("success test", "running: build=success test=success deploy=pending"),
    ),
    case(
        "dag_test_allow_failure_true",
        [job("test", 0, allow_failure=True), job("deploy", 1, needs=["test"])],
        "pending: test=pending deploy=created",
        ("drop test", "pending: test=failed deploy=pending"),
        ("success deploy", "success: test=failed deploy=success"),
    ),
    case(
        "dag_test_manual_allow_failure_false",
        [job("test", 0, when=MANUAL, allow_failure=False), job("deploy", 1, needs=["test"])],
        "manual: test=manual deploy=created",
        ("play test", "pending: test=pending deploy=created"),
        ("run test", "running: test=running deploy=created"),
        ("success test", "running: test=success deploy=pending"),
        ("success deploy", "success: test=success deploy=success"),
    ),
    case(
        "dag_test_manual_allow_failure_false_deploy_always",
        [
            job("test", 0, when=MANUAL, allow_failure=False),
            job("deploy", 1, when=ALWAYS, needs=["test"]),
        ],
        "manual: test=manual deploy=created",
        ("play test", "pending: test=pending deploy=created"),
        ("drop test", "running: test=failed deploy=pending"),
    ),
    case(
        "dag_test_manual_allow_failure_false_deploy_on_failure",
        [
            job("test", 0, when=MANUAL, allow_failure=False),
            job("deploy", 1, when=ON_FAILURE, needs=["test"]),
        ],
        "manual: test=manual deploy=created",
        ("play test", "pending: test=pending deploy=created"),
        ("drop test", "running: test=failed deploy=pending"),
    ),
    case(
        "dag_test_manual_allow_failure_false_other_test_succeeds_deploy_needs_both",
        [
            job("test1", 0),
            job("test2", 0, when=MANUAL, allow_failure=False),
            job("deploy", 1, needs=["test1", "test2"]),
        ],
        "running: test1=pending test2=manual deploy=created",
        ("success test1", "manual: test1=success test2=manual deploy=created"),
    ),
    case(
        "dag_test_manual_allow_failure_true_deploy_always",
        [job("test", 0, when=MANUAL), job("deploy", 1, when=ALWAYS, needs=["test"])],
        "pending: test=manual deploy=pending",
    ),
    case(
        "dag_test_manual_allow_failure_true_deploy_on_failure",
        [job("test", 0, when=MANUAL), job("deploy", 1, when=ON_FAILURE, needs=["test"])],
        "skipped: test=manual deploy=skipped",
        ("play test", "pending: test=pending deploy=created"),
        ("drop test", "success: test=failed deploy=skipped"),
    ),
    case(
        "dag_test_manual_allow_failure_true_fails",
        [job("test", 0, when=MANUAL), job("deploy", 1, needs=["test"])],
        "skipped: test=manual deploy=skipped",
        ("play test", "pending: test=pending deploy=created"),
        ("run test", "running: test=running deploy=created"),
        ("drop test", "running: test=failed deploy=pending"),
        ("success deploy", "success: test=failed deploy=success"),
    ),
    case(
        "dag_test_manual_allow_failure_true_other_test_succeeds_deploy_needs_both",
        [job("test1", 0), job("test2", 0, when=MANUAL), job("deploy", 1, needs=["test1", "test2"])],
        "pending: test1=pending test2=manual deploy=skipped",
        ("success test1", "success: test1=success test2=manual deploy=skipped"),
    ),
    case(
        "dag_test_manual_allow_failure_true_succeeds",
        [job("test", 0, when=MANUAL), job("deploy", 1, needs=["test"])],
        "skipped: test=manual deploy=skipped",
        ("play test", "pending: test=pending deploy=created"),
        ("run test", "running: test=running deploy=created"),
        ("success test", "running: test=success deploy=pending"),
        ("success deploy", "success: test=success deploy=success"),
    ),
    case(
        "dag_test_manual_post_test_needs_deploy_is_stage",
        [
            job("build", 0),
            job("test", 1, when=MANUAL),
            job("post_test", 2, needs=["test"]),
            job("deploy", 3),
        ],
        "pending: build=pending test=created post_test=created deploy=created",
        ("success build", "running: build=success test=manual post_test=skipped deploy=pending"),
    ),
    case(
        "dag_test_manual_same_and_different_stage_needs",
        [
            job("job_a", 0, when=MANUAL),
            job("job_b", 1, when=MANUAL),
            job("job_c", 2, needs=["job_b"]),
            job("job_d", 2, needs=["job_a"]),
        ],
        "skipped: job_a=manual job_b=manual job_c=skipped job_d=skipped",
        ("play job_b", "pending: job_a=manual job_b=pending job_c=created job_d=skipped"),
    ),
    case(
        "dag_test_manual_same_stage_needs",
        [
            job("first_job", 0),
            job("second_job", 1, when=MANUAL),
            job("third_job", 2, needs=["second_job"]),
            job("fourth_job", 3, needs=["third_job"]),
        ],
        "pending: first_job=pending second_job=created third_job=created fourth_job=created",
        (
            "success first_job",
            "success: first_job=success second_job=manual third_job=skipped fourth_job=skipped",
        ),
        (
            "play second_job",
            "running: first_job=success second_job=pending third_job=created fourth_job=created",
        ),
    ),
    case(
        "dag_test_on_failure_no_needs",
        [job("test1", needs=[]), job("test2", when=ON_FAILURE, needs=[])],
        "pending: test1=pending test2=skipped",
        ("success test1", "success: test1=success test2=skipped"),
    ),
    case(
        "dag_test_on_failure_with_success",
        [job("build", 0), job("test", 1, when=ON_FAILURE), job("deploy", 2, needs=["test"])],
        "pending: build=pending test=created deploy=created",
        ("success build", "success: build=success test=skipped deploy=skipped"),
    ),
]

EVENTS = {
    "success": Run.succeed,
    "drop": Run.fail,
    "cancel": Run.cancel,
    "run": Run.run,
    "play": Run.play,
    "retry": Run.retry,
}


def expectation(text: str) -> tuple[BuildStatus, dict[str, object]]:
    build, jobs = text.split(":", 1)
    return BuildStatus(build), dict(parse_statuses(jobs))


@pytest.mark.parametrize(("jobs", "init", "steps"), CASES)
def test_gitlab_processing_case(
    jobs: Sequence[JobNode], init: str, steps: Sequence[tuple[str, str]]
) -> None:
    run = Run(jobs).start()
    assert (run.build, run.statuses()) == expectation(init), "after the pipeline is created"
    for event, expected in steps:
        verb, *names = event.split()
        EVENTS[verb](run, *names)
        assert (run.build, run.statuses()) == expectation(expected), f"after {event!r}"
