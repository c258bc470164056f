"""Gitea, Forgejo and Gogs deliveries: one payload family under three header sets."""

from __future__ import annotations

from typing import Any

import pytest

from ferrous.application.webhooks import EventKind
from tests.unit.forges.helpers import SHA_A, SHA_B, SHA_C, ZERO, deliver, one

REPO = {
    "name": "hello",
    "full_name": "team/hello",
    "owner": {"login": "team", "username": "team"},
    "clone_url": "https://gitea.example/team/hello.git",
    "ssh_url": "git@gitea.example:team/hello.git",
    "html_url": "https://gitea.example/team/hello",
    "default_branch": "main",
}
USER = {"login": "ann", "username": "ann", "full_name": "Ann", "email": "ann@example.com"}


def commit(sha: str, message: str = "Change", **files: list[str]) -> dict[str, Any]:
    return {
        "id": sha,
        "message": message,
        "timestamp": "2024-02-03T04:05:06Z",
        "author": {"name": "Ann", "email": "ann@example.com", "username": "ann"},
        "added": files.get("added", []),
        "modified": files.get("modified", ["f"]),
        "removed": files.get("removed", []),
    }


def push(ref: str = "refs/heads/main", **fields: Any) -> dict[str, Any]:
    return {
        "ref": ref,
        "before": SHA_A,
        "after": SHA_B,
        "commits": [commit(SHA_B)],
        "repository": REPO,
        "pusher": USER,
        "sender": USER,
    } | fields


def gitea_pr(action: str) -> dict[str, Any]:
    return {
        "action": action,
        "number": 4,
        "pull_request": {
            "number": 4,
            "title": "Add license",
            "body": "BSD",
            "labels": [{"name": "legal"}],
            "html_url": "https://gitea.example/team/hello/pulls/4",
            "head": {"ref": "feature", "sha": SHA_C, "repo": REPO},
            "base": {"ref": "main", "sha": SHA_A, "repo": REPO},
            "user": USER,
        },
        "repository": REPO,
        "sender": USER,
    }


def gogs_pr(action: str) -> dict[str, Any]:
    return {
        "action": action,
        "number": 2,
        "pull_request": {
            "number": 2,
            "title": "Huge improvements",
            "body": "",
            "head_branch": "feature",
            "head_repo": REPO,
            "base_branch": "main",
            "base_repo": REPO,
            "html_url": "https://gogs.example/team/hello/pulls/2",
        },
        "repository": REPO,
        "sender": USER,
    }


@pytest.mark.parametrize("forge", ["gitea", "forgejo", "gogs"])
def test_push(forge: str) -> None:
    delivery = deliver(forge, "push", push())
    assert delivery.provider == forge
    (event,) = delivery.events
    assert event.kind is EventKind.PUSH
    assert (event.branch, event.before, event.sha) == ("main", SHA_A, SHA_B)
    assert event.repository.namespace == "team"
    assert event.repository.clone_url == REPO["clone_url"]
    assert (event.sender.login, event.sender.name) == ("ann", "Ann")
    assert event.changed_files == ("f",)


def test_forgejo_delivery_headers() -> None:
    delivery = deliver("forgejo", "push", push(), **{"X-Forgejo-Delivery": "fj-1"})
    assert delivery.delivery_id == "fj-1"
    assert deliver("gitea", "push", push(), **{"X-Gitea-Delivery": "gt-1"}).delivery_id == "gt-1"


def test_total_commits_says_when_the_list_is_cut() -> None:
    commits = [commit(f"{i:040x}") for i in range(1, 6)]
    cut = one("gitea", "push", push(after=commits[0]["id"], commits=commits, total_commits=9))
    assert cut.changed_files is None
    whole = one("gitea", "push", push(after=commits[0]["id"], commits=commits, total_commits=5))
    assert whole.changed_files == ("f",)
    # old Gitea and Gogs do not say: a full list (the default cap) may have been cut
    assert one("gogs", "push", push(after=commits[0]["id"], commits=commits)).changed_files is None


def test_head_commit_is_preferred_and_else_found_by_sha() -> None:
    listed = one("gogs", "push", push(commits=[commit(SHA_A, "old"), commit(SHA_B, "new")]))
    assert listed.commit is not None
    assert listed.commit.message == "new"
    payload = push(head_commit=commit(SHA_B, "from head_commit"))
    headed = one("gitea", "push", payload)
    assert headed.commit is not None
    assert headed.commit.message == "from head_commit"


@pytest.mark.parametrize("forge", ["gitea", "gogs"])
def test_a_tag_builds_from_push_and_its_create_is_ignored(forge: str) -> None:
    tag = one(forge, "push", push("refs/tags/v2", before=ZERO, commits=[]))
    assert tag.kind is EventKind.TAG
    assert (tag.tag, tag.sha) == ("v2", SHA_B)
    create = {"ref": "v2", "ref_type": "tag", "sha": SHA_B, "repository": REPO, "sender": USER}
    created = one(forge, "create", create)
    assert created.kind is EventKind.IGNORED
    assert "push event" in created.ignored_reason
    assert (created.tag, created.after) == ("v2", SHA_B)


def test_deletion_builds_nothing() -> None:
    event = one("gitea", "push", push(after=ZERO, commits=[]))
    assert event.kind is EventKind.IGNORED
    assert one("gitea", "delete", {"ref": "x", "ref_type": "branch"}).kind is EventKind.IGNORED


def test_a_test_delivery_is_a_ping() -> None:
    # Gitea's and Gogs' "Test delivery": the branch head pushed onto itself
    event = one("gitea", "push", push(before=SHA_B, after=SHA_B))
    assert event.kind is EventKind.PING
    assert not event.creates_build


@pytest.mark.parametrize(
    ("action", "kind", "normalised"),
    [
        ("opened", EventKind.MERGE_REQUEST, "opened"),
        ("reopened", EventKind.MERGE_REQUEST, "reopened"),
        ("synchronized", EventKind.MERGE_REQUEST, "synchronize"),
        ("closed", EventKind.IGNORED, "closed"),
        ("edited", EventKind.IGNORED, "edited"),
        ("label_updated", EventKind.IGNORED, "label_updated"),
    ],
)
@pytest.mark.parametrize("forge", ["gitea", "forgejo"])
def test_gitea_pull_requests(forge: str, action: str, kind: EventKind, normalised: str) -> None:
    event = one(forge, "pull_request", gitea_pr(action))
    assert event.kind is kind
    mr = event.merge_request
    assert mr is not None
    assert mr.action == normalised
    assert (mr.number, mr.source_branch, mr.target_branch) == (4, "feature", "main")
    assert (mr.source_sha, mr.target_sha, mr.ref) == (SHA_C, SHA_A, "refs/pull/4/head")
    assert mr.labels == ("legal",)


def test_gitea_names_a_sync_by_its_type_too() -> None:
    assert one("gitea", "pull_request_sync", gitea_pr("synchronized")).creates_build


@pytest.mark.parametrize(
    ("action", "kind"),
    [
        ("opened", EventKind.MERGE_REQUEST),
        ("synchronized", EventKind.MERGE_REQUEST),
        ("edited", EventKind.IGNORED),
    ],
)
def test_gogs_pull_requests_have_branches_but_no_shas(action: str, kind: EventKind) -> None:
    event = one("gogs", "pull_request", gogs_pr(action))
    assert event.kind is kind
    mr = event.merge_request
    assert mr is not None
    assert (mr.source_branch, mr.target_branch, mr.source_sha) == ("feature", "main", "")
    assert mr.ref == "refs/pull/2/head"  # what the caller resolves with git
    assert event.sha == ""


@pytest.mark.parametrize("name", ["issues", "release", "repository", "issue_comment"])
def test_other_events_are_ignored(name: str) -> None:
    event = one("gitea", name, {"action": "published", "repository": REPO})
    assert event.kind is EventKind.IGNORED
    assert event.repository.full_name == "team/hello"
