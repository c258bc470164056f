"""The server's view of a repository (``GitSourceRepository``) over each real protocol."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from ferrous.domain.errors import NotFound, RepositoryUnavailable
from ferrous.domain.repo_credentials import RepoCredentials
from ferrous.infrastructure.git.source_repository import GitSourceRepository
from tests.git_servers import GitHttpServer, ServedRepo, SshServer, git
from tests.integration.git.conftest import TOKEN, Remote, token

PIPELINE = "test:\n  script: [echo hi]\n"


@pytest.fixture
def sources(tmp_path: Path) -> GitSourceRepository:
    return GitSourceRepository(tmp_path / "trees", tmp_path / "mirrors")


async def test_resolve_read_and_compare_commits(
    remote: Remote, sources: GitSourceRepository
) -> None:
    first = remote.repo.commit({".gitlab-ci.yml": PIPELINE, "a.txt": "a"}, "first")
    second = remote.repo.commit({"a.txt": "A", "src/b.txt": "b"}, "second\n\nbody")
    url, credentials = remote.url, remote.credentials

    resolved = await sources.resolve(url, "main", credentials)
    tree = await sources.checkout(url, first, credentials)
    info = await sources.commit_info(url, second, credentials)
    changed = await sources.changed_files(url, first, second, credentials)

    assert (resolved.sha, resolved.branch, resolved.tag) == (second, "main", None)
    assert (tree / ".gitlab-ci.yml").read_text() == PIPELINE
    assert (tree / "a.txt").read_text() == "a"
    assert info["message"] == "second\n\nbody"
    assert info["author"] == "Dev <dev@example.com>"
    assert sorted(changed or []) == ["a.txt", "src/b.txt"]
    # a new branch (before = 000...) or a before that is gone: every rules:changes is true
    assert await sources.changed_files(url, "0" * 40, second, credentials) is None
    assert await sources.changed_files(url, "f" * 40, second, credentials) is None


async def test_a_resolve_sees_the_latest_push_and_tags(
    remote: Remote, sources: GitSourceRepository
) -> None:
    first = remote.repo.commit({"a.txt": "1"})
    assert (await sources.resolve(remote.url, "main", remote.credentials)).sha == first
    second = remote.repo.commit({"a.txt": "2"})
    remote.repo.tag("v1.0", first)

    again = await sources.resolve(remote.url, "main", remote.credentials)
    tag = await sources.resolve(remote.url, "v1.0", remote.credentials)
    exact = await sources.resolve(remote.url, first, remote.credentials)

    assert again.sha == second
    assert (tag.sha, tag.branch, tag.tag) == (first, None, "v1.0")
    assert (exact.sha, exact.branch, exact.tag) == (first, None, None)
    with pytest.raises(NotFound):
        await sources.resolve(remote.url, "no-such-branch", remote.credentials)


async def test_a_commit_no_branch_holds_is_fetched_by_its_sha(
    base: Path, http: GitHttpServer, sources: GitSourceRepository
) -> None:
    """A merge request's head lives under refs the mirror does not copy."""
    repo = ServedRepo(base, "project")
    repo.commit({".gitlab-ci.yml": PIPELINE})
    await sources.resolve(http.url("project"), "main", token())  # the mirror exists
    dangling = repo.commit({".gitlab-ci.yml": PIPELINE + "# mr\n"}, branch="feature")
    git("update-ref", "refs/merge-requests/1/head", dangling, cwd=repo.bare)
    git("update-ref", "-d", "refs/heads/feature", cwd=repo.bare)

    tree = await sources.checkout(http.url("project"), dangling, token())

    assert (tree / ".gitlab-ci.yml").read_text().endswith("# mr\n")


async def test_a_missing_repository_is_not_found(
    http: GitHttpServer, sources: GitSourceRepository, tmp_path: Path
) -> None:
    with pytest.raises(NotFound):
        await sources.resolve(http.url("nothing-here"), "main", token())
    with pytest.raises(NotFound):
        await sources.resolve(str(tmp_path / "nowhere"), "main")


async def test_refused_token_is_a_clear_error_without_the_secret(
    base: Path, http: GitHttpServer, sources: GitSourceRepository
) -> None:
    ServedRepo(base, "project").commit({"a.txt": "a"})
    wrong = dataclasses.replace(token(), token="glpat-WrongTok3nValue")
    url_with_userinfo = http.url("project").replace("://", f"://oauth2:{TOKEN}x@")

    refusals = []
    for url, credentials in (
        (http.url("project"), wrong),
        (http.url("project"), None),
        (url_with_userinfo, None),
    ):
        with pytest.raises(RepositoryUnavailable) as caught:
            await sources.resolve(url, "main", credentials)
        refusals.append(caught.value)

    for error in refusals:
        text = f"{error} {error!r} {getattr(error, 'detail', '')}"
        assert "refused the credentials" in str(error)
        assert http.url("project") in str(error)
        assert "glpat-WrongTok3nValue" not in text
        assert TOKEN not in text
    assert {r.status for r in http.requests} == {401}


async def test_refused_ssh_key_is_a_clear_error_without_the_key(
    base: Path, sshd: SshServer, sources: GitSourceRepository
) -> None:
    repo = ServedRepo(base, "project")
    repo.commit({"a.txt": "a"})
    other = RepoCredentials.from_json(
        {"kind": "ssh_key", "private_key": sshd.other_key, "known_hosts": sshd.known_hosts}
    )
    stranger = dataclasses.replace(other, private_key=sshd.deploy_key, known_hosts="")
    impostor = dataclasses.replace(
        stranger, known_hosts=sshd.known_hosts.replace("127.0.0.1", "127.0.0.2")
    )

    with pytest.raises(RepositoryUnavailable) as refused:
        await sources.resolve(sshd.url(repo.bare), "main", other)
    trusted_on_first_use = await sources.resolve(sshd.url(repo.bare), "main", stranger)
    with pytest.raises(RepositoryUnavailable) as unknown_host:
        await sources.resolve(sshd.url(repo.bare), "main", impostor)

    assert "refused the credentials" in str(refused.value)
    assert "Permission denied" in str(refused.value)
    assert trusted_on_first_use.branch == "main"
    assert "Host key verification failed" in unknown_host.value.detail
    for error in (refused.value, unknown_host.value):
        lines = [line for line in sshd.other_key.splitlines() if "PRIVATE KEY" not in line]
        assert not any(line in f"{error} {error.detail}" for line in lines)
