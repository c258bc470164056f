"""The decisions every forge shares: which pushes and merge request actions build, what a
push's file list can tell, and which SHAs and refs are fit to hand to git.

Each forge module reads its own JSON into ``Commit``/``Repository``/``MergeRequest`` values and
hands them here, so "a deleted branch builds nothing" or "a capped commit list means the changed
files are unknown" is decided once, the same way for all of them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ferrous.application.webhooks import (
    ZERO_SHA,
    Commit,
    EventKind,
    MergeRequest,
    MergeRequestAction,
    Person,
    Repository,
    WebhookEvent,
    WebhookPayloadInvalid,
    is_zero_sha,
    mentions_skip_ci,
)
from ferrous.infrastructure.forges.payload import Payload

BUILDING_ACTIONS = frozenset(MergeRequestAction)

#: Full (40/64) or abbreviated (Bitbucket Cloud: 12) hex object names.
SHA = re.compile(r"^[0-9a-fA-F]{7,64}$")
#: What ``git check-ref-format`` refuses in a ref, plus a part starting with ``-``, which a
#: git command line would read as an option.
BAD_REF = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]|\.\.|@\{|//|/[.-]|^[-/.]|[/.]$|\.lock$|^@$")


def checked_sha(value: str, what: str) -> str:
    """SHAs go to git command lines: anything but hex is refused, not passed on."""
    if value and not SHA.match(value):
        raise WebhookPayloadInvalid(f"{what} {value[:80]!r} is not a commit SHA")
    return value


def checked_ref(value: str, what: str) -> str:
    """Refs and branch names go to git command lines: only what git itself allows."""
    if value and BAD_REF.search(value):
        raise WebhookPayloadInvalid(f"{what} {value[:120]!r} is not a valid git ref")
    return value


def ref_names(ref: str) -> tuple[str | None, str | None]:
    """``(branch, tag)`` of a full ref; both None for anything else (refs/notes/..., a PR)."""
    if ref.startswith("refs/heads/") and len(ref) > len("refs/heads/"):
        return ref.removeprefix("refs/heads/"), None
    if ref.startswith("refs/tags/") and len(ref) > len("refs/tags/"):
        return None, ref.removeprefix("refs/tags/")
    return None, None


def ignored(
    provider: str,
    reason: str,
    *,
    repository: Repository | None = None,
    sender: Person | None = None,
) -> WebhookEvent:
    return WebhookEvent(
        provider=provider,
        kind=EventKind.IGNORED,
        ignored_reason=reason,
        repository=repository or Repository(),
        sender=sender or Person(),
    )


def push_event(
    provider: str,
    *,
    ref: str,
    before: str,
    after: str,
    commit: Commit | None,
    repository: Repository,
    sender: Person,
    changed_files: tuple[str, ...] | None,
    deleted: bool = False,
) -> WebhookEvent:
    """A branch or tag push; a deletion, or a ref that is neither, is ignored with a reason;
    a push that moves nothing is a test delivery (``PING``)."""
    branch, tag = ref_names(checked_ref(ref, "ref"))
    before = checked_sha(before, "before") or ZERO_SHA
    checked_sha(after, "after")
    if commit is not None:
        checked_sha(commit.sha, "head commit")
    if deleted or is_zero_sha(after):
        what = f"tag {tag}" if tag else f"branch {branch}" if branch else ref
        reason = f"{what} was deleted"
        kind = EventKind.IGNORED
    elif branch is None and tag is None:
        reason = f"{ref!r} is neither a branch nor a tag"
        kind = EventKind.IGNORED
    elif before == after:
        # git never updates a ref to where it is: this is Gitea's and Gogs' "Test delivery",
        # a push of the branch head onto itself. Answer it like GitHub's ping.
        reason = ""
        kind = EventKind.PING
    else:
        reason = ""
        kind = EventKind.TAG if tag is not None else EventKind.PUSH
    return WebhookEvent(
        provider=provider,
        kind=kind,
        ignored_reason=reason,
        ref=ref,
        branch=branch,
        tag=tag,
        before=before,
        after=after,
        commit=commit,
        repository=repository,
        sender=sender,
        # a new branch has no "before" to compare with: GitLab then treats `changes` as true
        changed_files=None if kind is not EventKind.PUSH or is_zero_sha(before) else changed_files,
        skip_ci=commit is not None and mentions_skip_ci(commit.message),
    )


def merge_request_event(
    provider: str,
    merge_request: MergeRequest,
    *,
    repository: Repository,
    sender: Person,
    commit: Commit | None = None,
) -> WebhookEvent:
    """A pull/merge request: it builds when opened, reopened or given new commits."""
    checked_ref(merge_request.source_branch, "source branch")
    checked_ref(merge_request.target_branch, "target branch")
    checked_sha(merge_request.source_sha, "source SHA")
    checked_sha(merge_request.target_sha, "target SHA")
    if commit is not None:
        checked_sha(commit.sha, "last commit")
    builds = merge_request.action in BUILDING_ACTIONS
    source_ref = f"refs/heads/{merge_request.source_branch}" if merge_request.source_branch else ""
    return WebhookEvent(
        provider=provider,
        kind=EventKind.MERGE_REQUEST if builds else EventKind.IGNORED,
        ignored_reason="" if builds else f"merge request action {merge_request.action!r}",
        ref=source_ref,
        branch=merge_request.source_branch or None,
        after=merge_request.source_sha,
        commit=commit,
        repository=repository,
        sender=sender,
        merge_request=merge_request,
        skip_ci=commit is not None and mentions_skip_ci(commit.message),
    )


def union_of_files(commits: Sequence[Payload], *, complete: bool) -> tuple[str, ...] | None:
    """The added, modified and removed files of all pushed commits, or None when unknown.

    Unknown: the list is capped or the forge says it is not the whole push (``complete``), it
    is empty (the branch moved to commits the forge already had), or a commit does not list
    its files. The union is a superset of ``git diff before..after`` (a file added then removed
    still counts), which errs towards running a job, as GitLab does when it cannot tell.
    """
    if not complete or not commits:
        return None
    files: dict[str, None] = {}
    for commit in commits:
        for key in ("added", "modified", "removed"):
            listed = commit.texts(key)
            if listed is None:
                return None
            files.update(dict.fromkeys(listed))
    return tuple(sorted(files))


def find_commit(commits: list[Payload], sha: str, key: str = "id") -> Payload | None:
    """The commit with that sha in a push's list (forges order the list differently)."""
    if not sha:
        return None
    for commit in commits:
        if commit.text(key) == sha:
            return commit
    return None


def split_full_name(full_name: str) -> tuple[str, str]:
    """``group/sub/project`` -> (``group/sub``, ``project``)."""
    namespace, _, name = full_name.rpartition("/")
    return namespace, name
