"""From a forge event to the pipeline's trigger: GitLab's predefined variables, as GitLab does."""

from __future__ import annotations

import pytest

from ferrous.application.webhook_trigger import (
    merge_request_variables,
    predefined_variables,
    trigger_context,
)
from ferrous.pipeline_config.context import TriggerContext
from tests.unit.forges import test_github, test_gitlab
from tests.unit.forges.helpers import SHA_A, SHA_B, SHA_C, ZERO, one

#: what the caller knows from the project, before the event
BASE = TriggerContext(
    default_branch="main",
    project_name="hello",
    project_path="octo/hello",
    server_url="https://ci.example",
    commit_message="from git",
    commit_author="Git <git@example.com>",
)


def test_branch_push() -> None:
    event = one("github", "push", test_github.push())
    context = trigger_context(event, BASE)
    assert (context.source, context.branch, context.tag) == ("push", "main", None)
    assert (context.sha, context.before_sha) == (SHA_B, SHA_A)
    assert context.changed_files == ("README.md",)
    assert context.project_path == "octo/hello"  # the project's facts stay
    variables = context.predefined_variables()
    assert variables["CI_PIPELINE_SOURCE"] == "push"
    assert variables["CI_COMMIT_SHA"] == SHA_B
    assert variables["CI_COMMIT_BEFORE_SHA"] == SHA_A
    assert variables["CI_COMMIT_REF_NAME"] == "main"
    assert variables["CI_COMMIT_BRANCH"] == "main"
    assert "CI_COMMIT_TAG" not in variables
    assert variables["CI_COMMIT_MESSAGE"] == "Fix it"
    assert variables["CI_COMMIT_TITLE"] == "Fix it"
    assert variables["CI_COMMIT_AUTHOR"] == "Mona Lisa <mona@example.com>"
    assert variables["CI_COMMIT_TIMESTAMP"] == "2024-05-01T10:00:00+02:00"
    assert not any(name.startswith("CI_MERGE_REQUEST_") for name in variables)


def test_tag_push() -> None:
    payload = test_github.push("refs/tags/v1.2.0", before=ZERO)
    variables = predefined_variables(one("github", "push", payload), BASE)
    assert variables["CI_PIPELINE_SOURCE"] == "push"
    assert variables["CI_COMMIT_TAG"] == "v1.2.0"
    assert variables["CI_COMMIT_REF_NAME"] == "v1.2.0"
    assert "CI_COMMIT_BRANCH" not in variables
    assert trigger_context(one("github", "push", payload), BASE).changed_files is None


def test_github_pull_request_is_a_detached_merge_request_pipeline() -> None:
    event = one("github", "pull_request", test_github.pull_request("synchronize"))
    context = trigger_context(event, BASE)
    assert (context.source, context.branch, context.sha) == (
        "merge_request_event",
        "feature",
        SHA_C,
    )
    assert context.before_sha == ZERO  # GitLab: zeroes in merge request pipelines
    assert context.changed_files is None  # the caller diffs target...sha with git
    variables = context.predefined_variables()
    assert variables["CI_PIPELINE_SOURCE"] == "merge_request_event"
    assert variables["CI_COMMIT_REF_NAME"] == "feature"
    assert "CI_COMMIT_BRANCH" not in variables  # unset in MR pipelines, as on GitLab
    # a GitHub pull request carries no commit message: the base's (read from git) stays
    assert variables["CI_COMMIT_MESSAGE"] == "from git"
    assert variables["CI_COMMIT_AUTHOR"] == "Git <git@example.com>"
    assert variables["CI_MERGE_REQUEST_IID"] == "7"
    assert variables["CI_MERGE_REQUEST_TITLE"] == "Add feature"
    assert variables["CI_MERGE_REQUEST_SOURCE_BRANCH_NAME"] == "feature"
    assert variables["CI_MERGE_REQUEST_TARGET_BRANCH_NAME"] == "main"
    assert variables["CI_MERGE_REQUEST_LABELS"] == "bug,ci"
    assert variables["CI_MERGE_REQUEST_EVENT_TYPE"] == "detached"
    assert variables["CI_MERGE_REQUEST_SOURCE_BRANCH_SHA"] == ""  # only in merged results
    assert variables["CI_MERGE_REQUEST_REF_PATH"] == "refs/pull/7/head"
    assert variables["CI_MERGE_REQUEST_PROJECT_PATH"] == "octo/hello"
    assert variables["CI_MERGE_REQUEST_SOURCE_PROJECT_PATH"] == "octo/hello"


def test_gitlab_merge_request_keeps_its_commit_facts() -> None:
    payload = test_gitlab.merge_request("open")
    variables = predefined_variables(one("gitlab", "Merge Request Hook", payload), BASE)
    assert variables["CI_COMMIT_SHA"] == SHA_B
    assert variables["CI_COMMIT_MESSAGE"] == "Update README [ci skip]"
    assert variables["CI_COMMIT_AUTHOR"] == "Jo <jo@example.com>"
    assert variables["CI_MERGE_REQUEST_LABELS"] == "API,Platform"
    assert variables["CI_MERGE_REQUEST_SOURCE_PROJECT_PATH"] == "fork/gitlab-test"
    assert variables["CI_MERGE_REQUEST_SOURCE_PROJECT_URL"] == "http://example.com/fork/gitlab-test"
    assert variables["CI_MERGE_REQUEST_REF_PATH"] == "refs/merge-requests/3/head"


def test_merge_request_variables_of_a_push_are_none() -> None:
    assert merge_request_variables(one("github", "push", test_github.push())) == {}


@pytest.mark.parametrize(
    ("forge", "event", "payload"),
    [
        ("github", "ping", {"zen": "z"}),
        ("github", "pull_request", test_github.pull_request("closed")),
        ("gitlab", "Pipeline Hook", {}),
    ],
)
def test_an_event_that_builds_nothing_has_no_trigger(
    forge: str, event: str, payload: dict[str, object]
) -> None:
    with pytest.raises(ValueError, match="builds nothing"):
        trigger_context(one(forge, event, payload), BASE)
