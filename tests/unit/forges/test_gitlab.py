"""GitLab deliveries: Push, Tag Push and Merge Request hooks, to GitLab's documented shapes."""

from __future__ import annotations

from typing import Any

import pytest

from ferrous.application.webhooks import EventKind
from tests.unit.forges.helpers import SHA_A, SHA_B, SHA_C, ZERO, deliver, one

PROJECT = {
    "name": "Gitlab Test",
    "namespace": "GitlabHQ",
    "path_with_namespace": "gitlabhq/sub/gitlab-test",
    "web_url": "http://example.com/gitlabhq/sub/gitlab-test",
    "git_http_url": "http://example.com/gitlabhq/sub/gitlab-test.git",
    "git_ssh_url": "git@example.com:gitlabhq/sub/gitlab-test.git",
    "default_branch": "master",
}


def commit(sha: str, message: str = "Fix\n\nbody", **files: list[str]) -> dict[str, Any]:
    return {
        "id": sha,
        "message": message,
        "timestamp": "2024-01-02T03:04:05+00:00",
        "author": {"name": "Jo", "email": "jo@example.com"},
        "added": files.get("added", []),
        "modified": files.get("modified", []),
        "removed": files.get("removed", []),
    }


def push(**fields: Any) -> dict[str, Any]:
    commits = fields.pop("commits", [commit(SHA_A, added=["a"]), commit(SHA_B, modified=["b"])])
    return {
        "object_kind": "push",
        "ref": "refs/heads/master",
        "before": SHA_C,
        "after": SHA_B,
        "checkout_sha": SHA_B,
        "user_username": "jo",
        "user_name": "Jo",
        "user_email": "jo@example.com",
        "project": PROJECT,
        "commits": commits,
        "total_commits_count": len(commits),
    } | fields


def merge_request(action: str | None, **attributes: Any) -> dict[str, Any]:
    attrs = {
        "iid": 3,
        "title": "MS-Viewport",
        "description": "Adds it",
        "source_branch": "ms-viewport",
        "target_branch": "master",
        "url": "http://example.com/gitlabhq/sub/gitlab-test/-/merge_requests/3",
        "source": PROJECT
        | {
            "path_with_namespace": "fork/gitlab-test",
            "git_http_url": "http://example.com/fork/gitlab-test.git",
        },
        "target": PROJECT,
        "last_commit": commit(SHA_B, "Update README [ci skip]"),
        "action": action,
    } | attributes
    return {
        "object_kind": "merge_request",
        "user": {"username": "root", "name": "Administrator", "email": "admin@example.com"},
        "project": PROJECT,
        "object_attributes": attrs,
        "labels": [{"title": "API"}, {"title": "Platform"}],
    }


def test_push() -> None:
    event = one("gitlab", "Push Hook", push())
    assert event.kind is EventKind.PUSH
    assert (event.branch, event.before, event.after, event.sha) == ("master", SHA_C, SHA_B, SHA_B)
    assert event.commit is not None
    assert (event.commit.title, event.commit.author.name) == ("Fix", "Jo")
    repo = event.repository
    assert (repo.namespace, repo.name, repo.full_name) == (
        "gitlabhq/sub",
        "gitlab-test",
        "gitlabhq/sub/gitlab-test",
    )
    assert repo.clone_url == PROJECT["git_http_url"]
    assert repo.ssh_url == PROJECT["git_ssh_url"]
    assert (event.sender.login, event.sender.email) == ("jo", "jo@example.com")
    assert event.changed_files == ("a", "b")


def test_a_capped_commit_list_leaves_the_changed_files_unknown() -> None:
    event = one("gitlab", "Push Hook", push(total_commits_count=40))
    assert event.kind is EventKind.PUSH
    assert event.changed_files is None


def test_the_head_commit_is_found_by_sha_not_position() -> None:
    event = one("gitlab", "Push Hook", push(commits=[commit(SHA_B, "head"), commit(SHA_A, "old")]))
    assert event.commit is not None
    assert event.commit.message == "head"


def test_tag_push() -> None:
    payload = push(
        object_kind="tag_push", ref="refs/tags/v1.0.0", before=ZERO, after=SHA_C, commits=[]
    )
    event = one("gitlab", "Tag Push Hook", payload)
    assert event.kind is EventKind.TAG
    assert event.tag == "v1.0.0"
    assert event.after == SHA_C  # the tag object of an annotated tag
    assert event.sha == SHA_B  # checkout_sha: the commit it points to


def test_branch_deletion_builds_nothing() -> None:
    payload = push(after=ZERO, checkout_sha=None, commits=[])
    event = one("gitlab", "Push Hook", payload)
    assert event.kind is EventKind.IGNORED
    assert event.ignored_reason == "branch master was deleted"


@pytest.mark.parametrize(
    ("action", "extra", "normalised"),
    [
        ("open", {}, "opened"),
        ("reopen", {}, "reopened"),
        ("update", {"oldrev": SHA_A}, "synchronize"),
    ],
)
def test_merge_requests_that_build(action: str, extra: dict[str, Any], normalised: str) -> None:
    event = one("gitlab", "Merge Request Hook", merge_request(action, **extra))
    assert event.kind is EventKind.MERGE_REQUEST
    mr = event.merge_request
    assert mr is not None
    assert mr.action == normalised
    assert (mr.number, mr.source_branch, mr.target_branch) == (3, "ms-viewport", "master")
    assert (mr.source_sha, mr.target_sha, event.sha) == (SHA_B, "", SHA_B)
    assert mr.ref == "refs/merge-requests/3/head"
    assert mr.labels == ("API", "Platform")
    assert mr.source_repository == "fork/gitlab-test"
    assert mr.from_fork(event.repository)
    assert event.sender.login == "root"
    assert event.skip_ci  # the last commit says [ci skip]


@pytest.mark.parametrize(
    ("action", "reason"),
    [
        ("update", "merge request action 'update without new commits'"),
        ("close", "merge request action 'close'"),
        ("merge", "merge request action 'merge'"),
        ("approved", "merge request action 'approved'"),
        (None, "merge request action '(none)'"),
    ],
)
def test_merge_requests_that_do_not_build(action: str | None, reason: str) -> None:
    event = one("gitlab", "Merge Request Hook", merge_request(action))
    assert event.kind is EventKind.IGNORED
    assert event.ignored_reason == reason


@pytest.mark.parametrize(
    "message",
    ["[skip ci]", "[ci skip]", "[skip-ci]", "[ci-skip]", "[SKIP_CI]", "wip [Ci Skip] later"],
)
def test_gitlab_skip_ci_spellings(message: str) -> None:
    assert one("gitlab", "Push Hook", push(commits=[commit(SHA_B, message)])).skip_ci


@pytest.mark.parametrize("name", ["Pipeline Hook", "Note Hook", "System Hook", "Job Hook"])
def test_other_hooks_are_ignored(name: str) -> None:
    event = one("gitlab", name, {"object_kind": "x"})
    assert event.kind is EventKind.IGNORED


def test_the_per_request_uuid_is_the_delivery_id() -> None:
    both = {"X-Gitlab-Webhook-UUID": "per-request", "X-Gitlab-Event-UUID": "per-event"}
    assert deliver("gitlab", "Push Hook", push(), **both).delivery_id == "per-request"
    only_event = {"X-Gitlab-Event-UUID": "per-event"}
    assert deliver("gitlab", "Push Hook", push(), **only_event).delivery_id == "per-event"
