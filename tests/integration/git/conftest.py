"""Repositories served over each protocol, with the credentials each needs.

``remote`` is parametrized over ``PROTOCOLS``: a path on this machine, ``git://`` (git
daemon), ``http://`` with a token (http-backend behind basic auth: plain HTTP on 127.0.0.1
stands for a forge's HTTPS) and ``ssh://`` with a deploy key (skipped, saying why, where
sshd is missing). Each test gets fresh servers on free ports.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ferrous.domain.repo_credentials import CredentialKind, RepoCredentials
from tests.git_servers import GitDaemon, GitHttpServer, ServedRepo, SshServer, sshd_problem

PROTOCOLS = ["file", "git", "http", "ssh"]
TOKEN = "glpat-Tok3nThatMustNotLeak"
pytestmark = pytest.mark.integration


@dataclass
class Remote:
    protocol: str
    repo: ServedRepo
    url: str
    credentials: RepoCredentials | None
    secret: str  # what must never show ('' when there is none)


@pytest.fixture
def base(tmp_path: Path) -> Path:
    folder = tmp_path / "served"
    folder.mkdir()
    return folder


@pytest.fixture
def daemon(base: Path) -> Iterator[GitDaemon]:
    server = GitDaemon(base).start()
    yield server
    server.stop()


@pytest.fixture
def http(base: Path) -> Iterator[GitHttpServer]:
    server = GitHttpServer(base, token=TOKEN).start()
    yield server
    server.stop()


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[SshServer]:
    problem = sshd_problem()
    if problem and os.environ.get("FERROUS_REQUIRE_SSHD") == "1":
        pytest.fail(f"FERROUS_REQUIRE_SSHD=1 but {problem}")
    if problem:
        pytest.skip(f"no SSH server: {problem}")
    server = SshServer(tmp_path / "sshd").start()
    yield server
    server.stop()


def secret_lines(secret: str) -> list[str]:
    """The parts of a secret that must never show (a key's armour lines are no secret)."""
    return [line for line in secret.splitlines() if line.strip() and "-----" not in line]


def token() -> RepoCredentials:
    return RepoCredentials(kind=CredentialKind.HTTPS_TOKEN, token=TOKEN)


def remote_for(request: pytest.FixtureRequest, protocol: str, repo: ServedRepo) -> Remote:
    if protocol == "file":
        return Remote(protocol, repo, f"file://{repo.bare}", None, "")
    if protocol == "git":
        daemon: GitDaemon = request.getfixturevalue("daemon")
        return Remote(protocol, repo, daemon.url(repo.name), None, "")
    if protocol == "http":
        http: GitHttpServer = request.getfixturevalue("http")
        return Remote(protocol, repo, http.url(repo.name), token(), TOKEN)
    sshd: SshServer = request.getfixturevalue("sshd")
    key = RepoCredentials(
        kind=CredentialKind.SSH_KEY, private_key=sshd.deploy_key, known_hosts=sshd.known_hosts
    )
    return Remote(protocol, repo, sshd.url(repo.bare), key, sshd.deploy_key)


@pytest.fixture(params=PROTOCOLS)
def remote(request: pytest.FixtureRequest, base: Path) -> Remote:
    """An empty repository ``project`` and how to reach it; commit with ``remote.repo``."""
    return remote_for(request, request.param, ServedRepo(base, "project"))
