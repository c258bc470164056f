"""Bitbucket Cloud and Server deliveries, told apart by the event key, behind one route."""

from __future__ import annotations

from typing import Any

import pytest

from ferrous.application.webhooks import EventKind
from tests.unit.forges.helpers import SHA_A, SHA_B, SHA_C, ZERO, deliver, one

CLOUD_REPO = {
    "name": "Foo Project",
    "full_name": "brad/foo",
    "links": {"html": {"href": "https://bitbucket.org/brad/foo"}},
}
ACTOR = {
    "username": "brad",
    "display_name": "Brad",
    "links": {"avatar": {"href": "https://bitbucket.org/account/brad/avatar/32/"}},
}


def target(sha: str, message: str = "Update README\n") -> dict[str, Any]:
    return {
        "hash": sha,
        "message": message,
        "date": "2018-07-02T20:26:56+00:00",
        "author": {"raw": "Brad R <brad@example.com>", "user": ACTOR},
        "links": {"html": {"href": f"https://bitbucket.org/brad/foo/commits/{sha}"}},
    }


def change(kind: str, name: str, old: str | None, new: str | None) -> dict[str, Any]:
    return {
        "old": {"type": kind, "name": name, "target": target(old)} if old else None,
        "new": {"type": kind, "name": name, "target": target(new)} if new else None,
        "created": old is None,
        "closed": new is None,
        "forced": False,
        "truncated": False,
        "commits": [],
    }


def cloud_push(*changes: dict[str, Any]) -> dict[str, Any]:
    return {"push": {"changes": list(changes)}, "repository": CLOUD_REPO, "actor": ACTOR}


def cloud_pr() -> dict[str, Any]:
    side = {"repository": CLOUD_REPO}
    return {
        "pullrequest": {
            "id": 1,
            "title": "Awesome",
            "description": "made changes",
            "source": side | {"branch": {"name": "develop"}, "commit": {"hash": "507a576e59b3"}},
            "destination": side
            | {"branch": {"name": "master"}, "commit": {"hash": "7d1a175411ef"}},
            "links": {"html": {"href": "https://bitbucket.org/brad/foo/pull-requests/1"}},
            "author": ACTOR,
        },
        "repository": CLOUD_REPO,
        "actor": ACTOR,
    }


SERVER_REPO = {
    "slug": "my-repo",
    "name": "My Repo",
    "project": {"key": "PRJ"},
    "links": {
        "clone": [
            {"href": "ssh://git@bbs.example:7999/prj/my-repo.git", "name": "ssh"},
            {"href": "https://bbs.example/scm/prj/my-repo.git", "name": "http"},
        ],
        "self": [{"href": "https://bbs.example/projects/PRJ/repos/my-repo/browse"}],
    },
}
SERVER_ACTOR = {"name": "jcitizen", "displayName": "Jane", "emailAddress": "jane@example.com"}


def server_change(ref: str, kind: str, before: str, after: str) -> dict[str, Any]:
    short = ref.rpartition("/")[2]
    ref_type = "TAG" if ref.startswith("refs/tags/") else "BRANCH"
    return {
        "ref": {"id": ref, "displayId": short, "type": ref_type},
        "refId": ref,
        "fromHash": before,
        "toHash": after,
        "type": kind,
    }


def server_pr() -> dict[str, Any]:
    return {
        "actor": SERVER_ACTOR,
        "pullRequest": {
            "id": 2,
            "title": "added LICENSE",
            "description": "BSD",
            "fromRef": {
                "id": "refs/heads/develop",
                "displayId": "develop",
                "latestCommit": SHA_C,
                "repository": SERVER_REPO,
            },
            "toRef": {
                "id": "refs/heads/master",
                "displayId": "master",
                "latestCommit": SHA_A,
                "repository": SERVER_REPO,
            },
            "author": {"user": SERVER_ACTOR},
        },
    }


def test_cloud_push() -> None:
    delivery = deliver(
        "bitbucket", "repo:push", cloud_push(change("branch", "master", SHA_A, SHA_B))
    )
    assert delivery.provider == "bitbucket-cloud"
    (event,) = delivery.events
    assert event.kind is EventKind.PUSH
    assert (event.ref, event.before, event.after) == ("refs/heads/master", SHA_A, SHA_B)
    assert event.commit is not None
    assert (event.commit.message, event.commit.author.name, event.commit.author.email) == (
        "Update README\n",
        "Brad R",
        "brad@example.com",
    )
    repo = event.repository
    assert (repo.namespace, repo.name) == ("brad", "foo")  # the slug, not the display name
    assert repo.clone_url == "https://bitbucket.org/brad/foo.git"
    assert repo.ssh_url == "git@bitbucket.org:brad/foo.git"
    assert (event.sender.login, event.sender.name) == ("brad", "Brad")
    assert event.changed_files is None  # Bitbucket lists no files


def test_cloud_push_of_a_branch_and_a_tag_is_two_events() -> None:
    payload = cloud_push(
        change("branch", "master", SHA_A, SHA_B), change("annotated_tag", "v1", None, SHA_B)
    )
    branch, tag = deliver("bitbucket", "repo:push", payload).events
    assert (branch.kind, branch.branch) == (EventKind.PUSH, "master")
    assert (tag.kind, tag.tag, tag.before) == (EventKind.TAG, "v1", ZERO)


def test_cloud_branch_deletion_and_bookmarks_build_nothing() -> None:
    payload = cloud_push(
        change("branch", "old", SHA_A, None), change("bookmark", "b", SHA_A, SHA_B)
    )
    deleted, bookmark = deliver("bitbucket", "repo:push", payload).events
    assert (deleted.kind, deleted.ignored_reason) == (EventKind.IGNORED, "branch old was deleted")
    assert bookmark.kind is EventKind.IGNORED


@pytest.mark.parametrize(
    ("key", "kind", "action"),
    [
        ("pullrequest:created", EventKind.MERGE_REQUEST, "opened"),
        ("pullrequest:updated", EventKind.MERGE_REQUEST, "synchronize"),
        ("pullrequest:fulfilled", EventKind.IGNORED, "merged"),
        ("pullrequest:rejected", EventKind.IGNORED, "declined"),
    ],
)
def test_cloud_pull_requests(key: str, kind: EventKind, action: str) -> None:
    event = one("bitbucket", key, cloud_pr())
    assert event.kind is kind
    mr = event.merge_request
    assert mr is not None
    assert mr.action == action
    assert (mr.number, mr.source_branch, mr.target_branch) == (1, "develop", "master")
    assert mr.source_sha == "507a576e59b3"  # abbreviated: the caller resolves it
    assert mr.source_clone_url == "https://bitbucket.org/brad/foo.git"


def test_cloud_other_events_are_ignored() -> None:
    event = one("bitbucket", "pullrequest:comment_created", cloud_pr())
    assert event.kind is EventKind.IGNORED
    assert event.repository.full_name == "brad/foo"


def test_server_push_of_several_refs() -> None:
    payload = {
        "eventKey": "repo:refs_changed",
        "actor": SERVER_ACTOR,
        "repository": SERVER_REPO,
        "changes": [
            server_change("refs/heads/master", "UPDATE", SHA_A, SHA_B),
            server_change("refs/tags/v1", "ADD", ZERO, SHA_B),
            server_change("refs/heads/gone", "DELETE", SHA_C, ZERO),
        ],
    }
    delivery = deliver("bitbucket", "repo:refs_changed", payload, **{"X-Request-Id": "r-1"})
    assert (delivery.provider, delivery.delivery_id) == ("bitbucket-server", "r-1")
    branch, tag, gone = delivery.events
    assert (branch.kind, branch.branch, branch.before, branch.sha) == (
        EventKind.PUSH,
        "master",
        SHA_A,
        SHA_B,
    )
    assert branch.commit is not None
    assert branch.commit.message == ""  # Server payloads carry none: read it from git
    assert (tag.kind, tag.tag) == (EventKind.TAG, "v1")
    assert gone.kind is EventKind.IGNORED
    repo = branch.repository
    assert (repo.namespace, repo.name, repo.full_name) == ("PRJ", "my-repo", "PRJ/my-repo")
    assert repo.clone_url == "https://bbs.example/scm/prj/my-repo.git"
    assert repo.ssh_url == "ssh://git@bbs.example:7999/prj/my-repo.git"
    assert (branch.sender.login, branch.sender.email) == ("jcitizen", "jane@example.com")


@pytest.mark.parametrize(
    ("key", "kind", "action"),
    [
        ("pr:opened", EventKind.MERGE_REQUEST, "opened"),
        ("pr:from_ref_updated", EventKind.MERGE_REQUEST, "synchronize"),
        ("pr:modified", EventKind.IGNORED, "edited"),
        ("pr:merged", EventKind.IGNORED, "merged"),
        ("pr:declined", EventKind.IGNORED, "declined"),
    ],
)
def test_server_pull_requests(key: str, kind: EventKind, action: str) -> None:
    event = one("bitbucket", key, server_pr())
    assert event.kind is kind
    mr = event.merge_request
    assert mr is not None
    assert mr.action == action
    assert (mr.number, mr.source_branch, mr.target_branch) == (2, "develop", "master")
    assert (mr.source_sha, mr.target_sha) == (SHA_C, SHA_A)
    assert mr.ref == "refs/pull-requests/2/from"
    assert event.repository.full_name == "PRJ/my-repo"


def test_server_ping() -> None:
    event = one("bitbucket", "diagnostics:ping", {"test": True})
    assert event.kind is EventKind.PING


def test_server_comment_is_ignored() -> None:
    assert one("bitbucket", "pr:comment:added", server_pr()).kind is EventKind.IGNORED


def test_cloud_request_uuid_is_the_delivery_id_and_the_hook_uuid_is_not() -> None:
    payload = cloud_push(change("branch", "master", SHA_A, SHA_B))
    headers = {"X-Hook-UUID": "hook", "X-Request-UUID": "request"}
    assert deliver("bitbucket", "repo:push", payload, **headers).delivery_id == "request"
    only_hook = deliver("bitbucket", "repo:push", payload, **{"X-Hook-UUID": "hook"})
    assert only_hook.delivery_id.startswith("sha256:")
