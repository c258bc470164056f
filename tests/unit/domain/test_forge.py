"""Forge links: what is derived from a repository URL, what must be given, and the status a
build reports."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ferrous.domain.build import Build, JobDefinition
from ferrous.domain.commit_status import CommitState, build_context, build_report
from ferrous.domain.errors import InvalidValue
from ferrous.domain.forge import ForgeKind, ForgeLink, ForgeTarget, effective
from ferrous.domain.statuses import When

GITHUB = ForgeLink(kind=ForgeKind.GITHUB, token="sealed")
GITLAB = ForgeLink(kind=ForgeKind.GITLAB, token="sealed")
GITEA = ForgeLink(kind=ForgeKind.GITEA, token="sealed")


@pytest.mark.parametrize(
    ("url", "repo"),
    [
        ("https://github.com/o/r.git", "o/r"),
        ("https://github.com/o/r", "o/r"),
        ("https://x-access-token:t@github.com/o/r.git", "o/r"),
        ("git@github.com:o/r.git", "o/r"),
        ("ssh://git@github.com/o/r.git", "o/r"),
        ("ssh://git@github.com:22/o/r", "o/r"),
    ],
)
def test_github_repositories_are_derived_from_every_url_form(url: str, repo: str) -> None:
    assert GITHUB.target(url) == ForgeTarget(
        kind=ForgeKind.GITHUB, api_url="https://api.github.com", repo=repo
    )


def test_github_enterprise_gets_its_own_api() -> None:
    target = GITHUB.target("https://ghe.example.com/o/r.git")
    assert target.api_url == "https://ghe.example.com/api/v3"


@pytest.mark.parametrize(
    ("link", "url", "api_url", "repo"),
    [
        (
            GITLAB,
            "https://gitlab.example.com/g/sub/r.git",
            "https://gitlab.example.com/api/v4",
            "g/sub/r",
        ),
        (GITLAB, "git@gitlab.example.com:g/r.git", "https://gitlab.example.com/api/v4", "g/r"),
        (
            GITLAB,
            "ssh://git@gitlab.example.com:2222/g/r.git",
            "https://gitlab.example.com/api/v4",
            "g/r",
        ),
        (
            GITEA,
            "https://code.example.com:3000/o/r.git",
            "https://code.example.com:3000/api/v1",
            "o/r",
        ),
        (GITEA, "http://gitea.lan/o/r.git", "http://gitea.lan/api/v1", "o/r"),
    ],
)
def test_self_hosted_apis_are_derived_from_the_host(
    link: ForgeLink, url: str, api_url: str, repo: str
) -> None:
    assert link.target(url) == ForgeTarget(kind=link.kind, api_url=api_url, repo=repo)


def test_given_values_win_and_lose_their_trailing_slash() -> None:
    link = ForgeLink(kind=ForgeKind.GITLAB, api_url="http://127.0.0.1:9/api/v4/", repo="42")
    assert link.target("/srv/git/app") == ForgeTarget(
        kind=ForgeKind.GITLAB, api_url="http://127.0.0.1:9/api/v4", repo="42"
    )


def test_a_local_repository_needs_what_cannot_be_derived() -> None:
    named = ForgeLink(kind=ForgeKind.GITHUB, repo="o/r", token="sealed")
    assert named.target("/srv/git/app").api_url == "https://api.github.com"
    with pytest.raises(InvalidValue, match="give forge_repo"):
        GITHUB.target("/srv/git/app")  # the API has a default, the repository does not
    with pytest.raises(InvalidValue, match="give forge_api_url"):
        GITEA.target("file:///srv/git/app")


@pytest.mark.parametrize(
    ("kind", "repo"),
    [
        (ForgeKind.GITHUB, "o/r/extra"),
        (ForgeKind.GITHUB, "just-a-name"),
        (ForgeKind.GITEA, "o/../r"),
        (ForgeKind.GITLAB, "name"),
        (ForgeKind.GITLAB, "g/r?x=1"),
    ],
)
def test_malformed_repositories_are_refused(kind: ForgeKind, repo: str) -> None:
    link = ForgeLink(kind=kind, api_url="https://forge.example.com", repo=repo)
    with pytest.raises(InvalidValue, match="forge_repo"):
        link.target("/srv/git/app")


@pytest.mark.parametrize(
    "api_url", ["ftp://forge.example.com", "forge.example.com", "https://u:p@forge.example.com"]
)
def test_malformed_api_urls_are_refused(api_url: str) -> None:
    link = ForgeLink(kind=ForgeKind.GITEA, api_url=api_url, repo="o/r")
    with pytest.raises(InvalidValue, match="forge_api_url"):
        link.target("/srv/git/app")


def test_the_token_never_shows() -> None:
    assert "sealed" not in repr(ForgeLink(kind=ForgeKind.GITHUB, token="sealed"))


def test_people_read_what_is_used() -> None:
    assert effective(None, "/x") == (ForgeKind.NONE, None, None)
    assert effective(GITLAB, "git@host:g/r.git") == (
        ForgeKind.GITLAB,
        "https://host/api/v4",
        "g/r",
    )
    assert effective(GITEA, "/x") == (ForgeKind.GITEA, None, None)  # stored values, as is


def _build(jobs: int) -> Build:
    definitions = [
        (
            JobDefinition(
                name=f"j{i}",
                stage="test",
                stage_index=0,
                when=When.ON_SUCCESS,
                needs=None,
                allow_failure=False,
            ),
            {"script": ["true"]},
        )
        for i in range(jobs)
    ]
    return Build.create(
        project_id="p",
        pipeline_id="q",
        number=7,
        ref="main",
        sha="a" * 40,
        source="api",
        variables={},
        jobs=definitions,
        problems=[],
        now=datetime(2026, 1, 1, tzinfo=UTC),
    )


def test_a_build_reports_its_status_in_neutral_words() -> None:
    build = _build(1)
    assert build_report(build).state is CommitState.PENDING
    assert build_report(build).description == "Build #7 is pending"

    build.start_job(build.jobs["j0"].id, "agent", datetime(2026, 1, 1, 0, 1, tzinfo=UTC))
    assert (build_report(build).state, build_report(build).description) == (
        CommitState.RUNNING,
        "Build #7 is running",
    )
    build.complete_job(
        build.jobs["j0"].id,
        attempt=1,
        exit_code=1,
        failure_reason=None,
        now=datetime(2026, 1, 1, 0, 2, tzinfo=UTC),
    )
    assert build_report(build).state is CommitState.FAILED
    assert build_report(build).description == "Build #7 failed"


def test_a_build_without_jobs_is_skipped() -> None:
    assert build_report(_build(0)).state is CommitState.SKIPPED
    assert build_context("nightly") == "ferrous/nightly"
