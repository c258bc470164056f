"""Bitbucket Server / Data Center payloads (``repo:refs_changed``, ``pr:*``, ``diagnostics:ping``).

Server payloads are lean: a push lists ref changes (``fromHash`` -> ``toHash``) without commits,
messages or files, so a push event's commit has only its SHA and the caller reads the rest from
git. Repositories are named by project key and slug (``PRJ/my-repo``). ``pr:modified`` (title,
description or target edited) builds nothing; ``pr:from_ref_updated`` (new commits) does.
"""

from __future__ import annotations

from typing import Final

from ferrous.application.webhooks import (
    ZERO_SHA,
    Commit,
    EventKind,
    MergeRequest,
    Person,
    Repository,
    WebhookEvent,
)
from ferrous.infrastructure.forges.normalize import ignored, merge_request_event, push_event
from ferrous.infrastructure.forges.payload import Payload

PROVIDER: Final = "bitbucket-server"

PR_ACTIONS: Final = {
    "pr:opened": "opened",
    "pr:from_ref_updated": "synchronize",
    "pr:modified": "edited",
    "pr:merged": "merged",
    "pr:declined": "declined",
    "pr:deleted": "deleted",
}

SERVER_EVENTS: Final = frozenset(
    {"repo:refs_changed", "repo:modified", "diagnostics:ping", "mirror:repo_synchronized"}
)


def is_server_event(name: str) -> bool:
    """Server's event keys; everything else is read as Bitbucket Cloud's."""
    return name in SERVER_EVENTS or name.startswith(("pr:", "repo:comment:"))


def repository(data: Payload | None) -> Repository:
    if data is None:
        return Repository()
    project = data.opt_obj("project")
    namespace = project.text("key") if project is not None else ""
    name = data.text("slug") or data.text("name")
    clone_url = ssh_url = web_url = ""
    links = data.opt_obj("links")
    if links is not None:
        for link in links.objs("clone"):
            if link.text("name") == "ssh":
                ssh_url = link.text("href")
            elif link.text("name") in ("http", "https"):
                clone_url = link.text("href")
        web_url = next((link.text("href") for link in links.objs("self")), "")
    return Repository(
        namespace=namespace,
        name=name,
        full_name=f"{namespace}/{name}" if namespace else name,
        clone_url=clone_url,
        ssh_url=ssh_url,
        web_url=web_url,
    )


def user(data: Payload | None) -> Person:
    if data is None:
        return Person()
    return Person(
        login=data.text("name") or data.text("slug"),
        name=data.text("displayName"),
        email=data.text("emailAddress"),
    )


def events(name: str, payload: Payload) -> tuple[WebhookEvent, ...]:
    sender = user(payload.opt_obj("actor"))
    if name == "diagnostics:ping":
        return (WebhookEvent(provider=PROVIDER, kind=EventKind.PING, sender=sender),)
    if name == "repo:refs_changed":
        repo = repository(payload.opt_obj("repository"))
        changes = payload.objs("changes")
        if not changes:
            return (ignored(PROVIDER, "a push without changes", repository=repo, sender=sender),)
        return tuple(push(change, repo, sender) for change in changes)
    if name in PR_ACTIONS:
        return (pull_request(PR_ACTIONS[name], payload, sender),)
    reason = f"Bitbucket Server event {name!r} starts no build"
    repo = repository(payload.opt_obj("repository"))
    return (ignored(PROVIDER, reason, repository=repo, sender=sender),)


def push(change: Payload, repo: Repository, sender: Person) -> WebhookEvent:
    ref = change.opt_obj("ref")
    full_ref = change.text("refId") or (ref.text("id") if ref is not None else "")
    if not full_ref:
        return ignored(PROVIDER, "a push change without a ref", repository=repo, sender=sender)
    after = change.text("toHash")
    return push_event(
        PROVIDER,
        ref=full_ref,
        before=change.text("fromHash", ZERO_SHA),
        after=after,
        commit=Commit(sha=after) if after else None,
        repository=repo,
        sender=sender,
        changed_files=None,  # Server payloads list no commits
        deleted=change.text("type") == "DELETE",
    )


def pull_request(action: str, payload: Payload, sender: Person) -> WebhookEvent:
    pr = payload.obj("pullRequest")
    source, target = pr.obj("fromRef"), pr.obj("toRef")
    source_repo = repository(source.opt_obj("repository"))
    number = pr.number("id")
    author = pr.opt_obj("author")
    merge_request = MergeRequest(
        number=number,
        action=action,
        title=pr.text("title"),
        description=pr.text("description"),
        source_branch=source.req_text("displayId"),
        target_branch=target.req_text("displayId"),
        source_sha=source.text("latestCommit"),
        target_sha=target.text("latestCommit"),
        ref=f"refs/pull-requests/{number}/from",
        source_repository=source_repo.full_name,
        source_clone_url=source_repo.clone_url,
        source_ssh_url=source_repo.ssh_url,
        author=user(author.opt_obj("user") if author is not None else None),
    )
    return merge_request_event(
        PROVIDER,
        merge_request,
        repository=repository(target.opt_obj("repository")),
        sender=sender,
    )
