"""GitLab webhooks: the ``X-Gitlab-Token`` secret and the Push, Tag Push and Merge Request hooks.

GitLab does not sign deliveries; it sends the configured secret token verbatim, compared here in
constant time. GitLab lets a hook have no token, but Ferrous does not accept such hooks: set
the project's webhook secret as the hook's "Secret token".

A push's ``commits`` list is capped (20 by default) while ``total_commits_count`` is the truth;
when they differ the changed files are unknown and the caller asks git. A merge request
``update`` builds only when it carries ``oldrev``, GitLab's sign that commits were pushed (a
title or label edit has none).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from ferrous.application.webhooks import (
    ZERO_SHA,
    Commit,
    MergeRequest,
    Person,
    Repository,
    WebhookDelivery,
    WebhookEvent,
)
from ferrous.infrastructure.forges.github import commit  # GitLab's push commits have its shape
from ferrous.infrastructure.forges.normalize import (
    find_commit,
    ignored,
    merge_request_event,
    push_event,
    split_full_name,
    union_of_files,
)
from ferrous.infrastructure.forges.payload import Payload, decode_body, delivery_id, event_name
from ferrous.infrastructure.forges.signatures import check_token, lower_headers

#: ``X-Gitlab-Webhook-UUID`` is new for every request; ``X-Gitlab-Event-UUID`` is shared by
#: the hooks one event fires (GitLab uses it to detect recursion), so it only comes second.
DELIVERY_HEADERS: Final = ("X-Gitlab-Webhook-UUID", "X-Gitlab-Event-UUID")

MR_ACTIONS: Final = {"open": "opened", "reopen": "reopened"}


def project(data: Payload | None) -> Repository:
    """A GitLab project; ``path_with_namespace`` is the path, ``name``/``namespace`` are the
    display names (``Gitlab Test`` in ``GitlabHQ``), so they are not used."""
    if data is None:
        return Repository()
    full_name = data.text("path_with_namespace")
    namespace, name = split_full_name(full_name)
    return Repository(
        namespace=namespace,
        name=name or data.text("name"),
        full_name=full_name,
        clone_url=data.text("git_http_url") or data.text("http_url"),
        ssh_url=data.text("git_ssh_url") or data.text("ssh_url"),
        web_url=data.text("web_url"),
        default_branch=data.text("default_branch"),
    )


class GitLabWebhooks:
    """The ``WebhookParser`` for gitlab.com and self-managed GitLab."""

    provider = "gitlab"

    def verify(self, headers: Mapping[str, str], body: bytes, secret: str | None) -> None:
        check_token(headers, "X-Gitlab-Token", secret)

    def parse(self, headers: Mapping[str, str], body: bytes) -> WebhookDelivery:
        lowered = lower_headers(headers)
        name = event_name(lowered, ("X-Gitlab-Event",))
        payload = decode_body(lowered, body)
        return WebhookDelivery(
            provider=self.provider,
            event_name=name,
            delivery_id=delivery_id(lowered, DELIVERY_HEADERS, body),
            events=(self.event(name, payload),),
        )

    def event(self, name: str, payload: Payload) -> WebhookEvent:
        if name in ("Push Hook", "Tag Push Hook"):
            return self.push(payload)
        if name == "Merge Request Hook":
            return self.merge_request(payload)
        return ignored(self.provider, f"GitLab event {name!r} starts no build")

    def push(self, payload: Payload) -> WebhookEvent:
        commits = payload.objs("commits")
        after = payload.req_text("after")
        # checkout_sha is the commit the ref points to (for an annotated tag, not the tag)
        head_sha = payload.text("checkout_sha") or after
        head = commit(find_commit(commits, head_sha))
        if head is None and head_sha and head_sha != ZERO_SHA:
            head = Commit(sha=head_sha)  # a tag or new branch: no commit listed
        total = payload.data.get("total_commits_count")
        complete = isinstance(total, int) and total == len(commits)
        return push_event(
            self.provider,
            ref=payload.req_text("ref"),
            before=payload.text("before", ZERO_SHA),
            after=after,
            commit=head,
            repository=project(payload.opt_obj("project")),
            sender=Person(
                login=payload.text("user_username"),
                name=payload.text("user_name"),
                email=payload.text("user_email"),
                avatar_url=payload.text("user_avatar"),
            ),
            changed_files=union_of_files(commits, complete=complete),
        )

    def merge_request(self, payload: Payload) -> WebhookEvent:
        attributes = payload.obj("object_attributes")
        action = attributes.text("action") or "(none)"
        if action == "update":
            action = "synchronize" if attributes.has("oldrev") else "update without new commits"
        number = attributes.number("iid")
        last_commit = commit(attributes.opt_obj("last_commit"))
        source = project(attributes.opt_obj("source"))
        labels = payload.objs("labels") or attributes.objs("labels")
        user = payload.opt_obj("user")
        merge_request = MergeRequest(
            number=number,
            action=MR_ACTIONS.get(action, action),
            title=attributes.text("title"),
            description=attributes.text("description"),
            source_branch=attributes.req_text("source_branch"),
            target_branch=attributes.req_text("target_branch"),
            source_sha=last_commit.sha if last_commit else "",
            ref=f"refs/merge-requests/{number}/head",
            source_repository=source.full_name,
            source_clone_url=source.clone_url,
            source_ssh_url=source.ssh_url,
            labels=tuple(label.text("title") for label in labels),
            web_url=attributes.text("url"),
        )
        sender = Person()
        if user is not None:
            sender = Person(
                login=user.text("username"),
                name=user.text("name"),
                email=user.text("email"),
                avatar_url=user.text("avatar_url"),
            )
        return merge_request_event(
            self.provider,
            merge_request,
            repository=project(payload.opt_obj("project")),
            sender=sender,
            commit=last_commit,
        )
