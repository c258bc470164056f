"""Forge webhook deliveries, normalised: what a push, tag or merge request asks us to build.

GitHub, GitLab, Gitea/Forgejo, Gogs and Bitbucket each sign and shape their deliveries their own
way; the adapters in ``ferrous.infrastructure.forges`` verify and read them into the types here,
so the use case that creates builds (and its tests) never sees a forge's JSON. The types are
plain frozen data: a delivery is recorded and replayed, never changed.

Errors: a delivery that cannot be authenticated raises ``WebhookSignatureInvalid`` (meant for
HTTP 401; a ``PermissionDenied``, so 403 until ``api/errors.py`` lists it); one that cannot be
read raises ``WebhookPayloadInvalid`` (meant for HTTP 400; ``api/errors.py`` must list it). A
delivery that is fine but asks for nothing (a deleted branch, a closed pull request, an issue
comment) is not an error: it is an event of kind ``IGNORED`` with the reason, so the forge
sees a 2xx and the delivery log says why nothing ran.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final, Protocol

from ferrous.domain.errors import FerrousError, NotFound, PermissionDenied

#: What forges send as "before" for a new ref and "after" for a deleted one (SHA-1 repos).
ZERO_SHA: Final = "0" * 40

#: GitLab's own test (``Gitlab::Ci::Pipeline::Chain::Skip::SKIP_PATTERN``): ``[ci skip]`` or
#: ``[skip ci]`` with a space, ``_`` or ``-`` between the words, in any case.
SKIP_CI: Final = re.compile(r"\[(ci[ _-]skip|skip[ _-]ci)\]", re.IGNORECASE)


class WebhookSignatureInvalid(PermissionDenied):
    """The webhook delivery's signature or token is missing or does not match."""


class WebhookSecretMissing(WebhookSignatureInvalid):
    """The project has no webhook secret, so no delivery can be trusted; set one first."""


class WebhookPayloadInvalid(FerrousError):
    """The webhook delivery could not be read."""


class UnknownForge(NotFound):
    """There is no such forge (github, gitlab, gitea, forgejo, gogs, bitbucket)."""


class EventKind(StrEnum):
    PUSH = "push"  # commits pushed to a branch (also a new branch)
    TAG = "tag"  # a tag pushed
    MERGE_REQUEST = "merge_request"  # a pull/merge request opened, reopened or given commits
    PING = "ping"  # the forge checks that the hook works
    IGNORED = "ignored"  # a valid delivery that starts nothing; see ``ignored_reason``


class MergeRequestAction(StrEnum):
    """The merge request actions that start a build, in one vocabulary for every forge."""

    OPENED = "opened"
    REOPENED = "reopened"
    SYNCHRONIZE = "synchronize"  # new commits on the source branch (GitLab: update + oldrev)


@dataclass(frozen=True, kw_only=True, slots=True)
class Person:
    login: str = ""
    name: str = ""
    email: str = ""
    avatar_url: str = ""


@dataclass(frozen=True, kw_only=True, slots=True)
class Repository:
    namespace: str = ""  # owner, group path or Bitbucket Server project key
    name: str = ""  # the path segment (``hello-world``), not a display name
    full_name: str = ""  # ``namespace/name``
    clone_url: str = ""  # http(s)
    ssh_url: str = ""
    web_url: str = ""
    default_branch: str = ""


@dataclass(frozen=True, kw_only=True, slots=True)
class Commit:
    sha: str
    message: str = ""
    author: Person = field(default_factory=Person)
    timestamp: str = ""  # ISO 8601, as the forge sent it
    url: str = ""

    @property
    def title(self) -> str:
        return self.message.split("\n", 1)[0]


@dataclass(frozen=True, kw_only=True, slots=True)
class MergeRequest:
    number: int  # GitHub/Gitea number, GitLab iid, Bitbucket id
    action: str  # a MergeRequestAction value when it builds, else the forge's own word
    title: str = ""
    description: str = ""
    source_branch: str = ""
    target_branch: str = ""
    #: The head commit of the source branch. May be empty (Gogs sends none) or abbreviated
    #: (Bitbucket Cloud sends 12 hex digits): then resolve ``ref`` with git.
    source_sha: str = ""
    target_sha: str = ""  # the target branch's head when the forge says (GitHub, Gitea, BBS)
    ref: str = ""  # the forge's ref for the head: refs/pull/1/head, refs/merge-requests/1/head
    source_repository: str = ""  # full name of the repository the commits come from
    source_clone_url: str = ""
    source_ssh_url: str = ""
    labels: tuple[str, ...] = ()
    web_url: str = ""
    author: Person = field(default_factory=Person)

    def from_fork(self, repository: Repository) -> bool:
        """True when the commits come from another repository (decide about secrets)."""
        return bool(self.source_repository) and self.source_repository != repository.full_name


@dataclass(frozen=True, kw_only=True, slots=True)
class WebhookEvent:
    """One normalised thing a delivery asks for; ``IGNORED`` ones keep what could be read."""

    provider: str
    kind: EventKind
    ignored_reason: str = ""
    ref: str = ""  # full ref: refs/heads/x, refs/tags/v1 (MR events: the source branch's)
    branch: str | None = None
    tag: str | None = None
    before: str = ZERO_SHA
    after: str = ""  # as the forge sent it (for an annotated tag: maybe the tag object)
    commit: Commit | None = None  # the head commit, when the payload carries it
    repository: Repository = field(default_factory=Repository)
    sender: Person = field(default_factory=Person)
    merge_request: MergeRequest | None = None
    #: Union of the pushed commits' added/modified/removed files; None when the payload cannot
    #: say (new branch, force push, capped commit list, forge without file lists): ask git.
    changed_files: tuple[str, ...] | None = None
    skip_ci: bool = False  # the head commit message says [skip ci] (GitLab's spellings)

    @property
    def creates_build(self) -> bool:
        return self.kind in (EventKind.PUSH, EventKind.TAG, EventKind.MERGE_REQUEST)

    @property
    def sha(self) -> str:
        """The commit to build: the head commit, else the MR's source, else ``after``."""
        if self.commit is not None and self.commit.sha:
            return self.commit.sha
        if self.merge_request is not None and self.merge_request.source_sha:
            return self.merge_request.source_sha
        return self.after


@dataclass(frozen=True, kw_only=True, slots=True)
class WebhookDelivery:
    """One HTTP delivery: usually one event; a Bitbucket push of several refs carries several."""

    provider: str
    event_name: str  # the forge's event header value (``push``, ``Merge Request Hook``)
    delivery_id: str  # the forge's delivery header, else ``sha256:<hex of the body>``
    events: tuple[WebhookEvent, ...]


class WebhookParser(Protocol):
    """One forge's webhooks. Pure and thread-safe: no I/O, no state between calls.

    Call ``verify`` first, always: ``parse`` trusts the body it is given. Header names are
    matched without regard to case (pass Starlette's ``request.headers`` or any mapping); the
    body must be the raw bytes as received, because signatures cover exactly those bytes.
    """

    def verify(self, headers: Mapping[str, str], body: bytes, secret: str | None) -> None:
        """Raises WebhookSignatureInvalid (WebhookSecretMissing when ``secret`` is empty)."""
        ...

    def parse(self, headers: Mapping[str, str], body: bytes) -> WebhookDelivery:
        """Raises WebhookPayloadInvalid; anything valid but unbuildable is an IGNORED event."""
        ...


def mentions_skip_ci(message: str) -> bool:
    """Whether a commit message asks GitLab-style to create no pipeline."""
    return SKIP_CI.search(message) is not None


def is_zero_sha(sha: str) -> bool:
    """A forge's "no commit" (40 zeros; 64 in SHA-256 repositories); empty counts too."""
    return not sha.strip("0")
