"""Bitbucket webhooks, Cloud (bitbucket.org) and Server/Data Center, behind one route.

Both sign with ``X-Hub-Signature: sha256=<hex HMAC-SHA256 of the body>`` and name the event in
``X-Event-Key``; the key tells the two apart (Cloud: ``repo:push``, ``pullrequest:created``;
Server: ``repo:refs_changed``, ``pr:opened``). The delivery id is ``X-Request-UUID`` (Cloud,
kept across retries) or ``X-Request-Id`` (Server). ``X-Hook-UUID`` names the hook, not the
delivery, so it is never used as the id.

One push can move several refs (``git push --follow-tags`` pushes a branch and a tag), and
Bitbucket sends it as one delivery with a list of changes: the delivery then carries one event
per change. Bitbucket Cloud sends ``pullrequest:updated`` both for new commits and for edits
of the title or description and does not say which, so it is treated as new commits; the
caller may skip a build whose pipeline already ran at that SHA.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final
from urllib.parse import urlsplit

from ferrous.application.webhooks import (
    ZERO_SHA,
    Commit,
    MergeRequest,
    Person,
    Repository,
    WebhookDelivery,
    WebhookEvent,
)
from ferrous.infrastructure.forges import bitbucket_server
from ferrous.infrastructure.forges.normalize import (
    ignored,
    merge_request_event,
    push_event,
    split_full_name,
)
from ferrous.infrastructure.forges.payload import Payload, decode_body, delivery_id, event_name
from ferrous.infrastructure.forges.signatures import SHA256_PREFIX, check_hex_hmac, lower_headers

PROVIDER: Final = "bitbucket-cloud"

PR_ACTIONS: Final = {
    "pullrequest:created": "opened",
    "pullrequest:updated": "synchronize",
    "pullrequest:fulfilled": "merged",
    "pullrequest:rejected": "declined",
}

#: Ref types of a push change; Mercurial's ``bookmark`` is neither.
BRANCH_TYPES: Final = frozenset({"branch", "named_branch"})
TAG_TYPES: Final = frozenset({"tag", "annotated_tag"})


def href(data: Payload | None, *names: str) -> str:
    """``links.html.href`` and the like; empty when any step is missing."""
    for name in names:
        if data is None:
            return ""
        data = data.opt_obj(name)
    return data.text("href") if data is not None else ""


def repository(data: Payload | None) -> Repository:
    """Clone URLs are not in the payload; they follow from the web URL's host and the path."""
    if data is None:
        return Repository()
    full_name = data.text("full_name")
    namespace, name = split_full_name(full_name)
    web_url = href(data, "links", "html")
    host = urlsplit(web_url).hostname if web_url.startswith("http") else None
    return Repository(
        namespace=namespace,
        name=name or data.text("name"),
        full_name=full_name,
        clone_url=f"{web_url}.git" if host else "",
        ssh_url=f"git@{host}:{full_name}.git" if host and full_name else "",
        web_url=web_url,
    )


def account(data: Payload | None) -> Person:
    if data is None:
        return Person()
    return Person(
        login=data.text("username") or data.text("nickname"),
        name=data.text("display_name"),
        avatar_url=href(data, "links", "avatar"),
    )


def commit(data: Payload | None) -> Commit | None:
    """A commit (``hash``, ``message``, ``date``); the author is ``"Name <email>"`` in ``raw``."""
    if data is None or not data.text("hash"):
        return None
    author = data.opt_obj("author")
    person = Person()
    if author is not None:
        name, _, email = author.text("raw").partition("<")
        user = account(author.opt_obj("user"))
        person = Person(
            login=user.login,
            name=name.strip(),
            email=email.rstrip(">").strip(),
            avatar_url=user.avatar_url,
        )
    return Commit(
        sha=data.text("hash"),
        message=data.text("message"),
        timestamp=data.text("date"),
        url=href(data, "links", "html"),
        author=person,
    )


class BitbucketWebhooks:
    """The ``WebhookParser`` for Bitbucket Cloud and Bitbucket Server / Data Center."""

    provider = "bitbucket"

    def verify(self, headers: Mapping[str, str], body: bytes, secret: str | None) -> None:
        check_hex_hmac(headers, ["X-Hub-Signature"], body, secret, prefix=SHA256_PREFIX)

    def parse(self, headers: Mapping[str, str], body: bytes) -> WebhookDelivery:
        lowered = lower_headers(headers)
        name = event_name(lowered, ("X-Event-Key",))
        payload = decode_body(lowered, body)
        if bitbucket_server.is_server_event(name):
            provider, events = bitbucket_server.PROVIDER, bitbucket_server.events(name, payload)
        else:
            provider, events = PROVIDER, cloud_events(name, payload)
        return WebhookDelivery(
            provider=provider,
            event_name=name,
            delivery_id=delivery_id(lowered, ("X-Request-UUID", "X-Request-Id"), body),
            events=events,
        )


def cloud_events(name: str, payload: Payload) -> tuple[WebhookEvent, ...]:
    repo = repository(payload.opt_obj("repository"))
    sender = account(payload.opt_obj("actor"))
    if name == "repo:push":
        changes = payload.obj("push").objs("changes")
        if not changes:
            return (ignored(PROVIDER, "a push without changes", repository=repo, sender=sender),)
        return tuple(cloud_push(change, repo, sender) for change in changes)
    if name in PR_ACTIONS:
        return (cloud_pull_request(PR_ACTIONS[name], payload, repo, sender),)
    reason = f"Bitbucket Cloud event {name!r} starts no build"
    return (ignored(PROVIDER, reason, repository=repo, sender=sender),)


def cloud_push(change: Payload, repo: Repository, sender: Person) -> WebhookEvent:
    new, old = change.opt_obj("new"), change.opt_obj("old")
    state = new or old
    if state is None:
        return ignored(PROVIDER, "a push change without refs", repository=repo, sender=sender)
    ref_type, ref_name = state.text("type"), state.req_text("name")
    if ref_type in BRANCH_TYPES:
        ref = f"refs/heads/{ref_name}"
    elif ref_type in TAG_TYPES:
        ref = f"refs/tags/{ref_name}"
    else:
        return ignored(
            PROVIDER, f"a {ref_type!r} ref starts no build", repository=repo, sender=sender
        )
    old_target = old.opt_obj("target") if old else None
    new_target = new.opt_obj("target") if new else None
    return push_event(
        PROVIDER,
        ref=ref,
        before=old_target.text("hash") if old_target else ZERO_SHA,
        after=new_target.text("hash") if new_target else ZERO_SHA,
        commit=commit(new_target),
        repository=repo,
        sender=sender,
        changed_files=None,  # Bitbucket lists commits without their files
        deleted=new is None,
    )


def cloud_pull_request(
    action: str, payload: Payload, repo: Repository, sender: Person
) -> WebhookEvent:
    pr = payload.obj("pullrequest")
    source, destination = pr.obj("source"), pr.obj("destination")
    source_repo = repository(source.opt_obj("repository"))
    source_commit, target_commit = source.opt_obj("commit"), destination.opt_obj("commit")
    merge_request = MergeRequest(
        number=pr.number("id"),
        action=action,
        title=pr.text("title"),
        description=pr.text("description"),
        source_branch=source.obj("branch").req_text("name"),
        target_branch=destination.obj("branch").req_text("name"),
        # abbreviated (12 hex digits) in the payload: resolve it in the source repository
        source_sha=source_commit.text("hash") if source_commit else "",
        target_sha=target_commit.text("hash") if target_commit else "",
        ref="",  # Bitbucket Cloud has no fetchable pull request ref: fetch the source branch
        source_repository=source_repo.full_name,
        source_clone_url=source_repo.clone_url,
        source_ssh_url=source_repo.ssh_url,
        web_url=href(pr, "links", "html"),
        author=account(pr.opt_obj("author")),
    )
    return merge_request_event(PROVIDER, merge_request, repository=repo, sender=sender)
