"""The agent's checkout (``GitCommitSource``) over each real protocol and ``GIT_*`` setting."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from ferrous.agent.remote.source import GitCommitSource
from ferrous.agent.sandbox import NOBODY, _chown_tree
from ferrous.domain.errors import RepositoryUnavailable
from tests.git_servers import GitDaemon, GitHttpServer, ServedRepo, git
from tests.integration.git.conftest import TOKEN, Remote, secret_lines, token


class Log(list[str]):
    def __call__(self, text: str) -> None:
        self.append(text)


def five_commits(repo: ServedRepo) -> list[str]:
    return [repo.commit({"n.txt": str(n)}, f"commit {n}") for n in range(5)]


def checkout(
    remote: Remote,
    sha: str,
    workspace: Path,
    variables: dict[str, str] | None = None,
    ref: str = "main",
) -> Log:
    log = Log()
    source = GitCommitSource(
        remote.url,
        sha,
        ref,
        credentials=remote.credentials,
        cache_dir=workspace.parent / "git-cache",
    )
    source.fetch(workspace, {"CI_COMMIT_BRANCH": ref, **(variables or {})}, log)
    return log


def head(workspace: Path) -> tuple[str, int]:
    count = int(git("rev-list", "--count", "HEAD", cwd=workspace))
    return git("rev-parse", "HEAD", cwd=workspace), count


@pytest.mark.parametrize("strategy", ["fetch", "clone"])
def test_checkout_of_a_commit_that_is_not_the_tip(
    remote: Remote, tmp_path: Path, strategy: str
) -> None:
    shas = five_commits(remote.repo)
    workspace = tmp_path / "builds" / "job"

    log = checkout(remote, shas[3], workspace, {"GIT_STRATEGY": strategy, "GIT_DEPTH": "2"})

    assert head(workspace) == (shas[3], 2)
    assert (workspace / "n.txt").read_text() == "3"
    assert git("rev-parse", "refs/remotes/origin/main", cwd=workspace) == shas[4]
    assert git("status", "--porcelain", cwd=workspace) == ""
    assert git("remote", "get-url", "origin", cwd=workspace) == remote.url
    assert f"Checked out {shas[3][:8]} as detached HEAD (ref is main)" in log
    assert ("Created fresh repository." in log) == (strategy == "clone")
    assert (tmp_path / "builds" / "git-cache").exists() == (strategy == "fetch")
    config = (workspace / ".git" / "config").read_text()
    assert not any(line in config for line in secret_lines(remote.secret))


@pytest.mark.parametrize("depth", ["1", "3", "0"])
def test_git_depth(remote: Remote, tmp_path: Path, depth: str) -> None:
    shas = five_commits(remote.repo)
    workspace = tmp_path / "builds" / "job"

    checkout(remote, shas[-1], workspace, {"GIT_DEPTH": depth})

    assert head(workspace) == (shas[-1], int(depth) or 5)


def test_a_server_that_refuses_shas_falls_back_to_the_ref(base: Path, tmp_path: Path) -> None:
    """Protocol v0 without ``uploadpack.allowReachableSHA1InWant``: only tips are given."""
    repo = ServedRepo(base, "project")
    shas = five_commits(repo)
    server = GitHttpServer(base, token=TOKEN, protocol_v2=False).start()
    try:
        remote = Remote("http", repo, server.url("project"), token(), TOKEN)
        tip, near, deep = (tmp_path / "b" / name for name in ("tip", "near", "deep"))
        tip_log = checkout(remote, shas[-1], tip, {"GIT_DEPTH": "2"})
        near_log = checkout(remote, shas[3], near, {"GIT_DEPTH": "2"})
        deep_log = checkout(remote, shas[0], deep, {"GIT_DEPTH": "2", "GIT_STRATEGY": "clone"})
    finally:
        server.stop()

    fallback = "The server does not give {} by its sha: fetching main instead"
    assert head(tip) == (shas[-1], 2)  # the tip is an advertised ref: given
    assert fallback.format(shas[-1][:8]) not in tip_log
    assert head(near) == (shas[3], 1)  # the depth counts from the ref's tip, as in GitLab
    assert fallback.format(shas[3][:8]) in near_log
    assert head(deep) == (shas[0], 1)  # not within the depth: deepened to the whole history
    assert fallback.format(shas[0][:8]) in deep_log


def test_a_tag_build_names_the_tag(remote: Remote, tmp_path: Path) -> None:
    shas = five_commits(remote.repo)
    remote.repo.tag("v1.0", shas[2])
    workspace = tmp_path / "builds" / "job"

    log = checkout(remote, shas[2], workspace, {"CI_COMMIT_TAG": "v1.0"}, ref="v1.0")

    assert git("describe", "--tags", cwd=workspace) == "v1.0"
    assert "Checked out" in log[-3] or any("(ref is v1.0)" in line for line in log)


@pytest.mark.parametrize("strategy", ["normal", "recursive"])
def test_submodules_inherit_the_credentials_of_the_same_host(
    request: pytest.FixtureRequest, base: Path, tmp_path: Path, strategy: str
) -> None:
    http: GitHttpServer = request.getfixturevalue("http")
    inner = ServedRepo(base, "inner")
    inner.commit({"inner.txt": "deepest"})
    middle = ServedRepo(base, "middle")
    middle.commit({"middle.txt": "middle"})
    allow_file = ("-c", "protocol.file.allow=always")
    git(*allow_file, "submodule", "add", "-q", str(inner.bare), "inner", cwd=middle.work)
    git("config", "-f", ".gitmodules", "submodule.inner.url", "../inner.git", cwd=middle.work)
    middle_sha = middle.commit({}, "with inner")
    top = ServedRepo(base, "top")
    top.commit({"top.txt": "top"})
    git(*allow_file, "submodule", "add", "-q", str(middle.bare), "middle", cwd=top.work)
    git("config", "-f", ".gitmodules", "submodule.middle.url", "../middle.git", cwd=top.work)
    sha = top.commit({}, "with middle")
    remote = Remote("http", top, http.url("top"), token(), TOKEN)
    workspace = tmp_path / "builds" / "job"

    log = checkout(remote, sha, workspace, {"GIT_SUBMODULE_STRATEGY": strategy})

    assert git("rev-parse", "HEAD", cwd=workspace / "middle") == middle_sha
    assert (workspace / "middle" / "middle.txt").read_text() == "middle"
    recursive = strategy == "recursive"
    assert (workspace / "middle" / "inner" / "inner.txt").exists() == recursive
    assert any("Updating/initializing submodules" in line for line in log)
    users = {r.user for r in http.requests if "/middle.git/" in r.path and r.status == 200}
    assert users == {"oauth2"}


def test_the_cache_is_reused_and_fetches_only_what_is_new(
    request: pytest.FixtureRequest, base: Path, tmp_path: Path
) -> None:
    http: GitHttpServer = request.getfixturevalue("http")
    repo = ServedRepo(base, "project")
    first = repo.commit({"big.bin": os.urandom(400_000).hex()}, "big")
    remote = Remote("http", repo, http.url("project"), token(), TOKEN)
    builds = tmp_path / "builds"

    started = time.monotonic()
    log1 = checkout(remote, first, builds / "job1")
    first_time = time.monotonic() - started
    sent_first = sum(r.sent for r in http.requests)
    second = repo.commit({"small.txt": "x"}, "small")
    started = time.monotonic()
    log2 = checkout(remote, second, builds / "job2")
    second_time = time.monotonic() - started
    sent_second = sum(r.sent for r in http.requests) - sent_first
    clone_started = time.monotonic()
    checkout(remote, second, builds / "job3", {"GIT_STRATEGY": "clone"})
    clone_time = time.monotonic() - clone_started

    assert "Created the agent's git cache of the repository" in log1
    assert "Reused the agent's git cache of the repository" in log2
    assert head(builds / "job2") == (second, 2)
    assert sent_second * 20 < sent_first, (sent_first, sent_second)
    big = builds / "job2" / "big.bin"
    assert big.stat().st_size == 800_000
    packs = list((builds / "job2" / ".git" / "objects" / "pack").glob("*.pack"))
    assert any(p.stat().st_nlink > 1 for p in packs)  # linked, not copied
    print(f"\nfirst {first_time:.3f}s, reused {second_time:.3f}s, clone {clone_time:.3f}s")


def test_concurrent_jobs_of_one_repository(daemon: GitDaemon, base: Path, tmp_path: Path) -> None:
    repo = ServedRepo(base, "project")
    shas = five_commits(repo)
    remote = Remote("git", repo, daemon.url("project"), None, "")
    errors: list[BaseException] = []

    def job(n: int) -> None:
        try:
            checkout(remote, shas[n], tmp_path / "builds" / f"job{n}")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=job, args=(n,)) for n in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    for n, sha in enumerate(shas):
        assert head(tmp_path / "builds" / f"job{n}")[0] == sha
        assert (tmp_path / "builds" / f"job{n}" / "n.txt").read_text() == str(n)


def test_unknown_variables_are_warned_about(daemon: GitDaemon, base: Path, tmp_path: Path) -> None:
    repo = ServedRepo(base, "project")
    sha = repo.commit({"a.txt": "a"})
    remote = Remote("git", repo, daemon.url("project"), None, "")

    log = checkout(
        remote,
        sha,
        tmp_path / "b" / "job",
        {"GIT_STRATEGY": "copy", "GIT_DEPTH": "deep", "GIT_SUBMODULE_STRATEGY": "all"},
    )

    assert any("GIT_STRATEGY 'copy'" in line for line in log)
    assert any("GIT_DEPTH 'deep' is not a number: using 20" in line for line in log)
    assert any("GIT_SUBMODULE_STRATEGY 'all'" in line for line in log)
    assert head(tmp_path / "b" / "job") == (sha, 1)


def test_a_commit_that_is_nowhere_fails_clearly(remote: Remote, tmp_path: Path) -> None:
    remote.repo.commit({"a.txt": "a"})

    with pytest.raises(RepositoryUnavailable, match=f"commit {'e' * 40} is not in main of"):
        checkout(remote, "e" * 40, tmp_path / "b" / "job")


@pytest.mark.skipif(os.geteuid() != 0, reason="giving files to another user needs root")
def test_a_sandboxed_job_gets_copies_of_the_cache_s_files(
    daemon: GitDaemon, base: Path, tmp_path: Path
) -> None:
    """The sandbox hands the workspace to an unprivileged user: never the cache's inodes."""
    repo = ServedRepo(base, "project")
    sha = repo.commit({"a.txt": "a"})
    workspace = tmp_path / "builds" / "job"
    checkout(Remote("git", repo, daemon.url("project"), None, ""), sha, workspace)
    cache_packs = list((tmp_path / "builds" / "git-cache").glob("*.git/objects/pack/*.pack"))
    assert cache_packs
    assert all(p.stat().st_nlink == 2 for p in cache_packs)

    _chown_tree(workspace, NOBODY, NOBODY)

    assert all(p.stat().st_uid == os.geteuid() for p in cache_packs)
    assert all(p.stat().st_nlink == 1 for p in cache_packs)
    assert git("-c", "safe.directory=*", "fsck", "--no-progress", cwd=workspace) == ""
    assert {p.stat().st_uid for p in (workspace / ".git/objects/pack").iterdir()} == {NOBODY}
