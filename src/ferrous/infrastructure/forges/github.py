"""GitHub webhooks: ``X-Hub-Signature-256`` and the push, pull_request and ping events.

Only the SHA-256 signature is accepted. GitHub sends it on every signed delivery (with the
legacy SHA-1 ``X-Hub-Signature`` beside it), so accepting SHA-1 alone would help no real
sender and would let a downgraded request through.

A tag builds from its ``push`` event; the ``create`` event GitHub sends beside it is ignored,
so one tag makes one build. Gitea, Forgejo and Gogs shaped their payloads after GitHub's, so
their module reuses the readers here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from ferrous.application.webhooks import (
    ZERO_SHA,
    Commit,
    EventKind,
    MergeRequest,
    Person,
    Repository,
    WebhookDelivery,
    WebhookEvent,
)
from ferrous.infrastructure.forges.normalize import (
    ignored,
    merge_request_event,
    push_event,
    ref_names,
    union_of_files,
)
from ferrous.infrastructure.forges.payload import Payload, decode_body, delivery_id, event_name
from ferrous.infrastructure.forges.signatures import SHA256_PREFIX, check_hex_hmac, lower_headers

#: "The commits array includes a maximum of 2048 commits" (GitHub's push event docs).
MAX_PUSH_COMMITS: Final = 2048

#: GitHub's pull_request actions that build, in the shared vocabulary; others are ignored.
PR_ACTIONS: Final = {"opened": "opened", "reopened": "reopened", "synchronize": "synchronize"}


def person(data: Payload | None) -> Person:
    """A GitHub/Gitea user (``login``; Gitea adds ``username``, ``full_name``, ``email``)."""
    if data is None:
        return Person()
    return Person(
        login=data.text("login") or data.text("username"),
        name=data.text("full_name") or data.text("name"),
        email=data.text("email"),
        avatar_url=data.text("avatar_url"),
    )


def repository(data: Payload | None) -> Repository:
    if data is None:
        return Repository()
    owner = data.opt_obj("owner")
    full_name = data.text("full_name")
    namespace = ""
    if owner is not None:
        namespace = owner.text("login") or owner.text("username") or owner.text("name")
    return Repository(
        namespace=namespace or full_name.rpartition("/")[0],
        name=data.text("name") or full_name.rpartition("/")[2],
        full_name=full_name,
        clone_url=data.text("clone_url"),
        ssh_url=data.text("ssh_url"),
        web_url=data.text("html_url"),
        default_branch=data.text("default_branch"),
    )


def commit(data: Payload | None) -> Commit | None:
    """A push's commit: ``id``, ``message``, ``timestamp``, ``author`` (name, email, username)."""
    if data is None or not data.text("id"):
        return None
    author = data.opt_obj("author")
    return Commit(
        sha=data.text("id"),
        message=data.text("message"),
        timestamp=data.text("timestamp"),
        url=data.text("url"),
        author=Person(
            login=author.text("username"), name=author.text("name"), email=author.text("email")
        )
        if author is not None
        else Person(),
    )


def created_ref(provider: str, payload: Payload) -> WebhookEvent:
    """A ``create`` event, ignored: the push event sent with it builds (one build per tag)."""
    ref_type, name = payload.text("ref_type"), payload.text("ref")
    if name.startswith("refs/"):
        ref = name
    else:
        ref = f"refs/tags/{name}" if ref_type == "tag" else f"refs/heads/{name}" if name else ""
    branch, tag = ref_names(ref)
    return WebhookEvent(
        provider=provider,
        kind=EventKind.IGNORED,
        ignored_reason=f"a new {ref_type or 'ref'} builds from its push event, not from create",
        ref=ref,
        branch=branch,
        tag=tag,
        after=payload.text("sha"),  # Gitea sends it; GitHub does not
        repository=repository(payload.opt_obj("repository")),
        sender=person(payload.opt_obj("sender")),
    )


def pull_request(provider: str, payload: Payload, actions: Mapping[str, str]) -> WebhookEvent:
    """A GitHub-shaped pull_request event (also Gitea's and Forgejo's)."""
    action = payload.req_text("action")
    pr = payload.obj("pull_request")
    head, base = pr.obj("head"), pr.obj("base")
    head_repo = head.opt_obj("repo")
    number = pr.number("number")
    merge_request = MergeRequest(
        number=number,
        action=actions.get(action, action),
        title=pr.text("title"),
        description=pr.text("body"),
        source_branch=head.req_text("ref"),
        target_branch=base.req_text("ref"),
        source_sha=head.text("sha"),
        target_sha=base.text("sha"),
        ref=f"refs/pull/{number}/head",
        source_repository=head_repo.text("full_name") if head_repo else "",
        source_clone_url=head_repo.text("clone_url") if head_repo else "",
        source_ssh_url=head_repo.text("ssh_url") if head_repo else "",
        labels=tuple(label.text("name") for label in pr.objs("labels")),
        web_url=pr.text("html_url"),
        author=person(pr.opt_obj("user")),
    )
    return merge_request_event(
        provider,
        merge_request,
        repository=repository(payload.opt_obj("repository")),
        sender=person(payload.opt_obj("sender")),
    )


class GitHubWebhooks:
    """The ``WebhookParser`` for github.com and GitHub Enterprise Server."""

    provider = "github"

    def verify(self, headers: Mapping[str, str], body: bytes, secret: str | None) -> None:
        check_hex_hmac(headers, ["X-Hub-Signature-256"], body, secret, prefix=SHA256_PREFIX)

    def parse(self, headers: Mapping[str, str], body: bytes) -> WebhookDelivery:
        lowered = lower_headers(headers)
        name = event_name(lowered, ("X-GitHub-Event",))
        payload = decode_body(lowered, body)
        return WebhookDelivery(
            provider=self.provider,
            event_name=name,
            delivery_id=delivery_id(lowered, ("X-GitHub-Delivery",), body),
            events=(self.event(name, payload),),
        )

    def event(self, name: str, payload: Payload) -> WebhookEvent:
        if name == "push":
            return self.push(payload)
        if name == "pull_request":
            return pull_request(self.provider, payload, PR_ACTIONS)
        if name == "ping":
            return WebhookEvent(
                provider=self.provider,
                kind=EventKind.PING,
                repository=repository(payload.opt_obj("repository")),
                sender=person(payload.opt_obj("sender")),
            )
        if name == "create":
            return created_ref(self.provider, payload)
        return ignored(self.provider, f"GitHub event {name!r} starts no build")

    def push(self, payload: Payload) -> WebhookEvent:
        commits = payload.objs("commits")
        complete = not payload.flag("forced") and len(commits) < MAX_PUSH_COMMITS
        return push_event(
            self.provider,
            ref=payload.req_text("ref"),
            before=payload.text("before", ZERO_SHA),
            after=payload.req_text("after"),
            commit=commit(payload.opt_obj("head_commit")),
            repository=repository(payload.opt_obj("repository")),
            sender=person(payload.opt_obj("sender")),
            changed_files=union_of_files(commits, complete=complete),
            deleted=payload.flag("deleted"),
        )
