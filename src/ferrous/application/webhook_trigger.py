"""From a webhook event to the trigger a pipeline is compiled for (GitLab's predefined variables).

``TriggerContext`` already turns a trigger into ``CI_*`` variables; this module only decides
which trigger a forge event is, as GitLab would: a branch or tag push is ``push``, a pull or
merge request is ``merge_request_event`` (a *detached* merge request pipeline, run on the
source branch's head). The project's own facts (name, default branch, server URL, pipeline
numbers) come from the ``base`` context the caller builds from the project, so one place
knows where those come from.
"""

from __future__ import annotations

import dataclasses

from ferrous.application.webhooks import ZERO_SHA, EventKind, WebhookEvent
from ferrous.pipeline_config.context import TriggerContext


def trigger_context(event: WebhookEvent, base: TriggerContext) -> TriggerContext:
    """``base`` with the trigger fields of a buildable event; commit facts the payload lacks
    (a GitHub pull request carries no commit message) are kept from ``base``.

    Raises ValueError for an event that builds nothing (check ``event.creates_build``).
    """
    if not event.creates_build:
        raise ValueError(f"a {event.kind} event builds nothing: {event.ignored_reason}")
    commit = event.commit
    base = dataclasses.replace(
        base,
        sha=event.sha or base.sha,
        commit_message=(commit.message if commit else "") or base.commit_message,
        commit_author=_author(event) or base.commit_author,
        commit_timestamp=(commit.timestamp if commit else "") or base.commit_timestamp,
    )
    if event.kind is EventKind.MERGE_REQUEST:
        assert event.merge_request is not None  # every MERGE_REQUEST event carries one
        return dataclasses.replace(
            base,
            source="merge_request_event",
            branch=event.merge_request.source_branch,
            tag=None,
            before_sha=ZERO_SHA,  # GitLab: "all zeroes in merge request pipelines"
            changed_files=None,  # the payload has no diff: the caller asks git (target...sha)
            merge_request=merge_request_variables(event),
        )
    return dataclasses.replace(
        base,
        source="push",
        branch=event.branch if event.kind is EventKind.PUSH else None,
        tag=event.tag if event.kind is EventKind.TAG else None,
        before_sha=event.before,
        # GitLab: `rules:changes` is always true for tags and new branches (None here)
        changed_files=event.changed_files if event.kind is EventKind.PUSH else None,
        merge_request={},
    )


def merge_request_variables(event: WebhookEvent) -> dict[str, str]:
    """GitLab's ``CI_MERGE_REQUEST_*`` variables for a detached merge request pipeline."""
    mr = event.merge_request
    if mr is None:
        return {}
    repo = event.repository
    return {
        "CI_MERGE_REQUEST_IID": str(mr.number),
        "CI_MERGE_REQUEST_TITLE": mr.title,
        "CI_MERGE_REQUEST_DESCRIPTION": mr.description,
        "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME": mr.source_branch,
        "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": mr.target_branch,
        # GitLab sets the two SHAs only in merged-results pipelines; ours are detached, which
        # GitLab documents as "empty" (the source head is CI_COMMIT_SHA).
        "CI_MERGE_REQUEST_SOURCE_BRANCH_SHA": "",
        "CI_MERGE_REQUEST_TARGET_BRANCH_SHA": "",
        "CI_MERGE_REQUEST_EVENT_TYPE": "detached",
        "CI_MERGE_REQUEST_LABELS": ",".join(mr.labels),
        "CI_MERGE_REQUEST_REF_PATH": mr.ref,
        "CI_MERGE_REQUEST_PROJECT_PATH": repo.full_name,
        "CI_MERGE_REQUEST_PROJECT_URL": repo.web_url,
        "CI_MERGE_REQUEST_SOURCE_PROJECT_PATH": mr.source_repository or repo.full_name,
        "CI_MERGE_REQUEST_SOURCE_PROJECT_URL": _web_url_of(mr.source_clone_url) or repo.web_url,
    }


def predefined_variables(event: WebhookEvent, base: TriggerContext) -> dict[str, str]:
    """Every predefined ``CI_*`` variable a pipeline run for ``event`` sees."""
    return trigger_context(event, base).predefined_variables()


def _author(event: WebhookEvent) -> str:
    """``CI_COMMIT_AUTHOR`` is ``Name <email>``; a merge request may only know its author."""
    person = event.commit.author if event.commit is not None else None
    if person is None or not (person.name or person.email):
        return ""
    return f"{person.name} <{person.email}>" if person.email else person.name


def _web_url_of(clone_url: str) -> str:
    return clone_url.removesuffix(".git") if clone_url.startswith("http") else ""
