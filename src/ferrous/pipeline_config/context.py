"""What a pipeline is compiled for: the trigger, the commit, and the predefined variables.

Rules, workflow rules and variable expansion all read GitLab's predefined variables
(``CI_COMMIT_BRANCH``, ``CI_PIPELINE_SOURCE``, ...). Building them in one place from one
context object means ``ferrous lint``, ``ferrous run`` and the server agree on what a rule sees.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

PIPELINE_SOURCES: Final = frozenset(
    {
        "push",
        "web",
        "api",
        "schedule",
        "trigger",
        "pipeline",
        "parent_pipeline",
        "merge_request_event",
        "external_pull_request_event",
        "chat",
        "webide",
        "external",
        "ondemand_dast_scan",
        "ondemand_dast_validation",
        "security_orchestration_policy",
    }
)


@dataclass(frozen=True, slots=True, kw_only=True)
class TriggerContext:
    """Everything known about why and on what a pipeline runs."""

    source: str = "push"
    branch: str | None = None
    tag: str | None = None
    sha: str = "0000000000000000000000000000000000000000"
    before_sha: str = "0000000000000000000000000000000000000000"
    commit_message: str = ""
    commit_author: str = ""
    commit_timestamp: str = ""
    default_branch: str = "main"
    project_name: str = "project"
    project_path: str = "project"
    project_url: str = ""
    project_dir: str = "/builds/project"
    pipeline_id: int = 0
    pipeline_iid: int = 0
    server_url: str = "http://localhost:8000"
    #: Files changed by the push (for `rules:changes`); None when unknown (e.g. a new branch),
    #: in which case `changes` rules are true, as GitLab documents.
    changed_files: tuple[str, ...] | None = None
    #: Files that exist in the commit's tree (for `rules:exists`); None: look on disk.
    existing_files: tuple[str, ...] | None = None
    merge_request: dict[str, str] = field(default_factory=dict)  # CI_MERGE_REQUEST_* values
    #: Variables given with the trigger (manual run, schedule, API); they beat the file's.
    variables: dict[str, str] = field(default_factory=dict)

    @property
    def ref_name(self) -> str:
        return self.tag or self.branch or ""

    def predefined_variables(self) -> dict[str, str]:
        """GitLab's predefined pipeline variables, with ``FERROUS_*`` aliases for the main ones."""
        short_sha = self.sha[:8]
        values: dict[str, str] = {
            "CI": "true",
            "GITLAB_CI": "true",
            "FERROUS_CI": "true",
            "CI_SERVER": "yes",
            "CI_SERVER_NAME": "Ferrous CI",
            "CI_SERVER_URL": self.server_url,
            "CI_PIPELINE_SOURCE": self.source,
            "CI_PIPELINE_ID": str(self.pipeline_id),
            "CI_PIPELINE_IID": str(self.pipeline_iid),
            "CI_COMMIT_SHA": self.sha,
            "CI_COMMIT_SHORT_SHA": short_sha,
            "CI_COMMIT_BEFORE_SHA": self.before_sha,
            "CI_COMMIT_REF_NAME": self.ref_name,
            "CI_COMMIT_REF_SLUG": ref_slug(self.ref_name),
            "CI_COMMIT_MESSAGE": self.commit_message,
            "CI_COMMIT_TITLE": self.commit_message.split("\n", 1)[0],
            "CI_COMMIT_DESCRIPTION": self.commit_message.partition("\n")[2].strip("\n"),
            "CI_COMMIT_AUTHOR": self.commit_author,
            "CI_COMMIT_TIMESTAMP": self.commit_timestamp,
            "CI_DEFAULT_BRANCH": self.default_branch,
            "CI_PROJECT_NAME": self.project_name,
            "CI_PROJECT_PATH": self.project_path,
            "CI_PROJECT_NAMESPACE": self.project_path.rpartition("/")[0],
            "CI_PROJECT_ROOT_NAMESPACE": self.project_path.partition("/")[0]
            if "/" in self.project_path
            else "",
            "CI_PROJECT_PATH_SLUG": ref_slug(self.project_path),
            "CI_PROJECT_URL": self.project_url,
            "CI_PROJECT_DIR": self.project_dir,
            "CI_REPOSITORY_URL": self.project_url,
        }
        if self.branch is not None:
            values["CI_COMMIT_BRANCH"] = self.branch
        if self.tag is not None:
            values["CI_COMMIT_TAG"] = self.tag
            values["CI_COMMIT_TAG_MESSAGE"] = ""
        if self.source == "merge_request_event":
            values.update(self.merge_request)
            values.pop("CI_COMMIT_BRANCH", None)  # GitLab leaves it unset in MR pipelines
        for name in ("SHA", "SHORT_SHA", "BRANCH", "TAG", "REF_NAME", "MESSAGE"):
            gitlab_name = f"CI_COMMIT_{name}"
            if gitlab_name in values:
                values[f"FERROUS_COMMIT_{name}"] = values[gitlab_name]
        values["FERROUS_PIPELINE_SOURCE"] = self.source
        return values


def ref_slug(ref: str) -> str:
    """``CI_COMMIT_REF_SLUG``: lowercased, non-alphanumerics to ``-``, at most 63 bytes."""
    out = []
    for ch in ref.lower():
        out.append(ch if ch.isascii() and ch.isalnum() else "-")
    return "".join(out)[:63].strip("-")
