"""Gitea, Forgejo and Gogs webhooks: one payload family (GitHub's shape), three header sets.

Signatures are bare hex HMAC-SHA256 of the body: ``X-Forgejo-Signature`` (Forgejo also sends
the same value as ``X-Gitea-Signature``, which Gitea sends alone) or ``X-Gogs-Signature``. The
first present header in that order is the one checked.

For a new tag these forges send a ``push`` event (``refs/tags/...``) and a ``create`` event
(``ref_type: tag``). The build comes from the ``push`` only: it carries before/after and the
commits like any push, and recent Gitea versions do not always send ``create`` for tags pushed
with git. ``create`` is ignored with that reason, so one tag makes one build.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from ferrous.application.webhooks import (
    ZERO_SHA,
    MergeRequest,
    WebhookDelivery,
    WebhookEvent,
)
from ferrous.infrastructure.forges.github import (
    commit,
    created_ref,
    person,
    pull_request,
    repository,
)
from ferrous.infrastructure.forges.normalize import (
    find_commit,
    ignored,
    merge_request_event,
    push_event,
    union_of_files,
)
from ferrous.infrastructure.forges.payload import Payload, decode_body, delivery_id, event_name
from ferrous.infrastructure.forges.signatures import check_hex_hmac, lower_headers

#: Gitea's and Gogs' default ``[ui] FEED_MAX_COMMIT_NUM``: a push lists at most that many
#: commits. Gitea says the real count in ``total_commits``; without it, a full list may be cut.
FEED_MAX_COMMITS: Final = 5

#: ``synchronized`` is the Gitea/Gogs spelling of GitHub's ``synchronize``.
PR_ACTIONS: Final = {"opened": "opened", "reopened": "reopened", "synchronized": "synchronize"}

#: Gitea names some pull request deliveries by their type (``X-Gitea-Event-Type``).
PR_EVENTS: Final = frozenset({"pull_request", "pull_request_sync"})


@dataclass(frozen=True, slots=True)
class GiteaFlavour:
    provider: str
    signature_headers: tuple[str, ...]
    event_headers: tuple[str, ...]
    delivery_headers: tuple[str, ...]


GITEA: Final = GiteaFlavour(
    provider="gitea",
    signature_headers=("X-Forgejo-Signature", "X-Gitea-Signature"),
    event_headers=("X-Forgejo-Event", "X-Gitea-Event"),
    delivery_headers=("X-Forgejo-Delivery", "X-Gitea-Delivery"),
)
FORGEJO: Final = dataclasses.replace(GITEA, provider="forgejo")


class GiteaWebhooks:
    """The ``WebhookParser`` for Gitea (default), Forgejo (``FORGEJO``) and, through
    ``gogs.GogsWebhooks``, Gogs."""

    def __init__(self, flavour: GiteaFlavour = GITEA) -> None:
        self.flavour = flavour
        self.provider = flavour.provider

    def verify(self, headers: Mapping[str, str], body: bytes, secret: str | None) -> None:
        check_hex_hmac(headers, self.flavour.signature_headers, body, secret)

    def parse(self, headers: Mapping[str, str], body: bytes) -> WebhookDelivery:
        lowered = lower_headers(headers)
        name = event_name(lowered, self.flavour.event_headers)
        payload = decode_body(lowered, body)
        return WebhookDelivery(
            provider=self.provider,
            event_name=name,
            delivery_id=delivery_id(lowered, self.flavour.delivery_headers, body),
            events=(self.event(name, payload),),
        )

    def event(self, name: str, payload: Payload) -> WebhookEvent:
        if name == "push":
            return self.push(payload)
        if name in PR_EVENTS:
            if payload.obj("pull_request").has("head"):
                return pull_request(self.provider, payload, PR_ACTIONS)
            return self.gogs_pull_request(payload)
        if name == "create":
            return created_ref(self.provider, payload)
        return ignored(
            self.provider,
            f"{self.provider} event {name!r} starts no build",
            repository=repository(payload.opt_obj("repository")),
            sender=person(payload.opt_obj("sender")),
        )

    def push(self, payload: Payload) -> WebhookEvent:
        commits = payload.objs("commits")
        after = payload.req_text("after")
        head = payload.opt_obj("head_commit") or find_commit(commits, after)
        total = payload.data.get("total_commits")
        if isinstance(total, int) and not isinstance(total, bool):
            complete = total == len(commits)
        else:
            complete = len(commits) < FEED_MAX_COMMITS
        return push_event(
            self.provider,
            ref=payload.req_text("ref"),
            before=payload.text("before", ZERO_SHA),
            after=after,
            commit=commit(head),
            repository=repository(payload.opt_obj("repository")),
            sender=person(payload.opt_obj("sender") or payload.opt_obj("pusher")),
            changed_files=union_of_files(commits, complete=complete),
        )

    def gogs_pull_request(self, payload: Payload) -> WebhookEvent:
        """Gogs' pull request names branches (``head_branch``) but sends no commit SHAs."""
        action = payload.req_text("action")
        pr = payload.obj("pull_request")
        head_repo = repository(pr.opt_obj("head_repo"))
        number = pr.number("number")
        merge_request = MergeRequest(
            number=number,
            action=PR_ACTIONS.get(action, action),
            title=pr.text("title"),
            description=pr.text("body"),
            source_branch=pr.req_text("head_branch"),
            target_branch=pr.req_text("base_branch"),
            ref=f"refs/pull/{number}/head",
            source_repository=head_repo.full_name,
            source_clone_url=head_repo.clone_url,
            source_ssh_url=head_repo.ssh_url,
            labels=tuple(label.text("name") for label in pr.objs("labels")),
            web_url=pr.text("html_url"),
            author=person(pr.opt_obj("user")),
        )
        return merge_request_event(
            self.provider,
            merge_request,
            repository=repository(payload.opt_obj("repository")),
            sender=person(payload.opt_obj("sender")),
        )
