"""GitHub deliveries, hand-written to the documented shapes: what builds and what is ignored."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import pytest

from ferrous.application.webhooks import EventKind
from tests.unit.forges.helpers import SHA_A, SHA_B, SHA_C, ZERO, deliver, one

REPO = {
    "name": "hello",
    "full_name": "octo/hello",
    "owner": {"login": "octo", "name": "octo"},
    "clone_url": "https://github.com/octo/hello.git",
    "ssh_url": "git@github.com:octo/hello.git",
    "html_url": "https://github.com/octo/hello",
    "default_branch": "main",
}
SENDER = {"login": "mona", "avatar_url": "https://avatars/mona"}


def commit(sha: str, message: str = "Fix it", **files: list[str]) -> dict[str, Any]:
    return {
        "id": sha,
        "message": message,
        "timestamp": "2024-05-01T10:00:00+02:00",
        "url": f"https://github.com/octo/hello/commit/{sha}",
        "author": {"name": "Mona Lisa", "email": "mona@example.com", "username": "mona"},
        "added": files.get("added", []),
        "modified": files.get("modified", []),
        "removed": files.get("removed", []),
    }


def push(ref: str = "refs/heads/main", **fields: Any) -> dict[str, Any]:
    commits = fields.pop("commits", [commit(SHA_B, modified=["README.md"])])
    return {
        "ref": ref,
        "before": SHA_A,
        "after": SHA_B,
        "created": False,
        "deleted": False,
        "forced": False,
        "commits": commits,
        "head_commit": commits[-1] if commits else None,
        "repository": REPO,
        "sender": SENDER,
    } | fields


def pull_request(action: str, **pr: Any) -> dict[str, Any]:
    return {
        "action": action,
        "number": 7,
        "pull_request": {
            "number": 7,
            "title": "Add feature",
            "body": None,
            "html_url": "https://github.com/octo/hello/pull/7",
            "user": {"login": "mona"},
            "labels": [{"name": "bug"}, {"name": "ci"}],
            "head": {"ref": "feature", "sha": SHA_C, "repo": REPO},
            "base": {"ref": "main", "sha": SHA_A, "repo": REPO},
        }
        | pr,
        "repository": REPO,
        "sender": SENDER,
    }


def test_branch_push() -> None:
    delivery = deliver("github", "push", push(), **{"X-GitHub-Delivery": "d-1"})
    assert (delivery.provider, delivery.event_name, delivery.delivery_id) == (
        "github",
        "push",
        "d-1",
    )
    (event,) = delivery.events
    assert event.kind is EventKind.PUSH
    assert (event.ref, event.branch, event.tag) == ("refs/heads/main", "main", None)
    assert (event.before, event.after, event.sha) == (SHA_A, SHA_B, SHA_B)
    assert event.commit is not None
    assert event.commit.title == "Fix it"
    assert event.commit.author.email == "mona@example.com"
    assert event.commit.timestamp == "2024-05-01T10:00:00+02:00"
    assert event.repository.full_name == "octo/hello"
    assert event.repository.namespace == "octo"
    assert event.repository.clone_url == "https://github.com/octo/hello.git"
    assert event.repository.ssh_url == "git@github.com:octo/hello.git"
    assert event.repository.web_url == "https://github.com/octo/hello"
    assert event.sender.login == "mona"
    assert event.changed_files == ("README.md",)
    assert event.creates_build
    assert not event.skip_ci


def test_changed_files_are_the_union_of_all_pushed_commits() -> None:
    commits = [
        commit(SHA_A, added=["a.py"], modified=["b.py"]),
        commit(SHA_B, removed=["c.py"], modified=["a.py"]),
    ]
    assert one("github", "push", push(commits=commits)).changed_files == ("a.py", "b.py", "c.py")


@pytest.mark.parametrize(
    "change",
    [
        {"before": ZERO, "created": True},  # a new branch: GitLab says `changes` is true
        {"forced": True},  # the dropped commits' changes are not listed
        {"commits": []},  # moved to commits the forge had: nothing listed
    ],
)
def test_changed_files_are_unknown_when_the_list_cannot_tell(change: dict[str, Any]) -> None:
    event = one("github", "push", push(**change))
    assert event.kind is EventKind.PUSH
    assert event.changed_files is None


def test_changed_files_are_unknown_when_github_caps_the_commits() -> None:
    commits = [commit(f"{i:040x}", modified=["x"]) for i in range(2048)]
    assert one("github", "push", push(commits=commits)).changed_files is None


def test_tag_push_builds_the_tagged_commit() -> None:
    # an annotated tag: `after` is the tag object, head_commit the commit it points to
    payload = push("refs/tags/v1.2.0", before=ZERO, after=SHA_C, base_ref="refs/heads/main")
    event = one("github", "push", payload)
    assert event.kind is EventKind.TAG
    assert (event.tag, event.branch, event.after, event.sha) == ("v1.2.0", None, SHA_C, SHA_B)
    assert event.changed_files is None


@pytest.mark.parametrize(
    ("ref", "what"), [("refs/heads/old", "branch old"), ("refs/tags/v1", "tag v1")]
)
def test_deleting_a_ref_builds_nothing(ref: str, what: str) -> None:
    payload = push(ref, after=ZERO, deleted=True, commits=[], head_commit=None)
    event = one("github", "push", payload)
    assert event.kind is EventKind.IGNORED
    assert event.ignored_reason == f"{what} was deleted"
    assert not event.creates_build


def test_a_push_to_another_kind_of_ref_is_ignored() -> None:
    event = one("github", "push", push("refs/notes/commits"))
    assert event.kind is EventKind.IGNORED
    assert "neither a branch nor a tag" in event.ignored_reason


@pytest.mark.parametrize(
    "message", ["Docs [skip ci]", "[CI SKIP] typo", "x\n\n[skip-ci]", "[ci_skip]", "[Skip_CI]"]
)
def test_skip_ci_in_the_head_commit_message(message: str) -> None:
    event = one("github", "push", push(commits=[commit(SHA_B, message)]))
    assert event.skip_ci
    assert event.kind is EventKind.PUSH  # still an event: the route records it, builds nothing


@pytest.mark.parametrize("message", ["skip ci", "[skip  ci]", "[skip pipeline]", "(ci skip)"])
def test_not_skip_ci(message: str) -> None:
    assert not one("github", "push", push(commits=[commit(SHA_B, message)])).skip_ci


@pytest.mark.parametrize(
    ("action", "normalised"),
    [("opened", "opened"), ("reopened", "reopened"), ("synchronize", "synchronize")],
)
def test_pull_requests_that_build(action: str, normalised: str) -> None:
    event = one("github", "pull_request", pull_request(action))
    assert event.kind is EventKind.MERGE_REQUEST
    mr = event.merge_request
    assert mr is not None
    assert mr.action == normalised
    assert (mr.number, mr.title, mr.description) == (7, "Add feature", "")
    assert (mr.source_branch, mr.target_branch) == ("feature", "main")
    assert (mr.source_sha, mr.target_sha) == (SHA_C, SHA_A)
    assert mr.ref == "refs/pull/7/head"
    assert mr.labels == ("bug", "ci")
    assert mr.author.login == "mona"
    assert not mr.from_fork(event.repository)
    assert (event.ref, event.branch, event.sha) == ("refs/heads/feature", "feature", SHA_C)
    assert event.changed_files is None


@pytest.mark.parametrize("action", ["closed", "edited", "labeled", "ready_for_review"])
def test_pull_requests_that_do_not_build(action: str) -> None:
    event = one("github", "pull_request", pull_request(action))
    assert event.kind is EventKind.IGNORED
    assert event.ignored_reason == f"merge request action {action!r}"
    assert event.merge_request is not None  # what could be read stays, for the delivery log


def test_a_pull_request_from_a_fork() -> None:
    fork = REPO | {"full_name": "eve/hello", "clone_url": "https://github.com/eve/hello.git"}
    payload = pull_request("opened", head={"ref": "main", "sha": SHA_C, "repo": fork})
    event = one("github", "pull_request", payload)
    mr = event.merge_request
    assert mr is not None
    assert mr.from_fork(event.repository)
    assert (mr.source_repository, mr.source_clone_url) == ("eve/hello", fork["clone_url"])


def test_a_pull_request_whose_fork_was_deleted() -> None:
    payload = pull_request("synchronize", head={"ref": "x", "sha": SHA_C, "repo": None})
    mr = one("github", "pull_request", payload).merge_request
    assert mr is not None
    assert (mr.source_repository, mr.source_clone_url) == ("", "")


def test_ping() -> None:
    event = one("github", "ping", {"zen": "Design for failure.", "hook_id": 1, "repository": REPO})
    assert event.kind is EventKind.PING
    assert event.repository.full_name == "octo/hello"
    assert not event.creates_build


def test_create_is_ignored_because_the_push_builds() -> None:
    payload = {"ref": "v1", "ref_type": "tag", "repository": REPO, "sender": SENDER}
    event = one("github", "create", payload)
    assert event.kind is EventKind.IGNORED
    assert "push event" in event.ignored_reason
    assert (event.ref, event.tag) == ("refs/tags/v1", "v1")


@pytest.mark.parametrize("name", ["issues", "star", "delete", "workflow_run", "no_such_event"])
def test_other_events_are_ignored(name: str) -> None:
    event = one("github", name, {"action": "created"})
    assert event.kind is EventKind.IGNORED
    assert name in event.ignored_reason


def test_a_form_encoded_delivery_is_read_like_json() -> None:
    body = urlencode({"payload": json.dumps(push())}).encode()
    delivery = deliver(
        "github", "push", body, **{"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert delivery.events[0].sha == SHA_B


def test_without_a_delivery_header_the_id_is_the_body_hash() -> None:
    first = deliver("github", "push", push())
    assert first.delivery_id.startswith("sha256:")
    assert deliver("github", "push", push()).delivery_id == first.delivery_id
    assert deliver("github", "push", push(after=SHA_C)).delivery_id != first.delivery_id


@pytest.mark.parametrize(
    "branch", ["feature/JIRA-12_fix", "release/1.2.x", "ünïcödé", "a-b/c-d", "v1@2", "x.y"]
)
def test_unusual_but_valid_branch_names_are_kept(branch: str) -> None:
    event = one("github", "push", push(f"refs/heads/{branch}"))
    assert (event.kind, event.branch) == (EventKind.PUSH, branch)
