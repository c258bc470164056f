"""Credentials never reach a command line, a job's log or an error message.

Every process Python starts is recorded (``subprocess.Popen`` wrapped), with its argv and
the temporary files its environment names; the token and the key's lines are looked for in
all argv, in every log line and in the exceptions, and the temporary files must be gone.
"""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path
from typing import Any

import pytest

from ferrous.agent.remote.source import GitCommitSource
from ferrous.domain.errors import RepositoryUnavailable
from ferrous.infrastructure.git.source_repository import GitSourceRepository
from tests.git_servers import GitHttpServer, ServedRepo, SshServer, git
from tests.integration.git.conftest import TOKEN, remote_for, secret_lines, token


class Recorded:
    def __init__(self) -> None:
        self.argv: list[list[str]] = []
        self.files: list[Path] = []  # askpass scripts and key files named in environments


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> Recorded:
    record = Recorded()
    real = subprocess.Popen

    class RecordingPopen(real):  # type: ignore[misc,valid-type]  # a test double
        def __init__(self, args: Any, *rest: Any, **kw: Any) -> None:
            record.argv.append([str(a) for a in args])
            env = kw.get("env") or {}
            record.files += [Path(env[k]) for k in ("GIT_ASKPASS",) if k in env]
            ssh = env.get("GIT_SSH_COMMAND", "")
            record.files += [Path(w) for w in ssh.split() if w.startswith("/")]
            for part in ssh.split():
                if part.startswith("UserKnownHostsFile="):
                    record.files.append(Path(part.split("=", 1)[1]))
            super().__init__(args, *rest, **kw)

    monkeypatch.setattr(subprocess, "Popen", RecordingPopen)
    return record


def assert_nowhere(secret: str, texts: list[str]) -> None:
    for line in secret_lines(secret):
        for text in texts:
            assert line not in text


@pytest.mark.parametrize("protocol", ["http", "ssh"])
async def test_credentials_stay_off_argv_logs_and_errors(
    request: pytest.FixtureRequest,
    base: Path,
    tmp_path: Path,
    recorded: Recorded,
    protocol: str,
) -> None:
    remote = remote_for(request, protocol, ServedRepo(base, "project"))
    sha = remote.repo.commit({".gitlab-ci.yml": "test:\n  script: [true]\n"})
    sources = GitSourceRepository(tmp_path / "trees", tmp_path / "mirrors")
    log: list[str] = []
    errors: list[BaseException] = []

    await sources.resolve(remote.url, "main", remote.credentials)
    await sources.checkout(remote.url, sha, remote.credentials)
    for strategy in ("fetch", "clone"):
        GitCommitSource(
            remote.url, sha, "main", credentials=remote.credentials, cache_dir=tmp_path / "cache"
        ).fetch(
            tmp_path / "builds" / strategy,
            {"GIT_STRATEGY": strategy, "GIT_SUBMODULE_STRATEGY": "recursive"},
            log.append,
        )
    wrong = dataclasses.replace(
        remote.credentials,
        token="glpat-Wr0ngButSecret" if protocol == "http" else "",
        private_key="" if protocol == "http" else remote.credentials.private_key,
    )
    if protocol == "ssh":
        sshd: SshServer = request.getfixturevalue("sshd")
        wrong = dataclasses.replace(wrong, private_key=sshd.other_key)
    with pytest.raises(RepositoryUnavailable) as server_side:
        await GitSourceRepository(tmp_path / "t2", tmp_path / "m2").resolve(
            remote.url, "main", wrong
        )
    errors.append(server_side.value)
    with pytest.raises(RepositoryUnavailable) as agent_side:
        GitCommitSource(remote.url, sha, "main", credentials=wrong).fetch(
            tmp_path / "builds" / "wrong", {}, log.append
        )
    errors.append(agent_side.value)

    argv = [" ".join(args) for args in recorded.argv]
    assert any(" fetch " in a for a in argv)
    messages = [f"{e} {e!r} {getattr(e, 'detail', '')}" for e in errors]
    for secret in (remote.secret, wrong.token, wrong.private_key):
        assert_nowhere(secret, argv + log + messages)
    assert all("refused the credentials" in str(e) for e in errors)
    assert recorded.files  # the askpass script or the key file were used ...
    assert not [f for f in recorded.files if f.exists()]  # ... and are gone
    for workspace in ("fetch", "clone"):
        config = (tmp_path / "builds" / workspace / ".git" / "config").read_text()
        assert_nowhere(remote.secret, [config])


async def test_a_token_in_the_url_is_moved_off_argv(
    base: Path, http: GitHttpServer, tmp_path: Path, recorded: Recorded
) -> None:
    repo = ServedRepo(base, "project")
    sha = repo.commit({"a.txt": "a"})
    url = http.url("project").replace("://", f"://ci:{TOKEN}@")
    log: list[str] = []

    resolved = await GitSourceRepository(tmp_path / "trees").resolve(url, "main")
    GitCommitSource(url, sha, "main", cache_dir=tmp_path / "cache").fetch(
        tmp_path / "builds" / "job", {}, log.append
    )

    assert resolved.sha == sha
    assert_nowhere(TOKEN, [" ".join(a) for a in recorded.argv] + log)
    assert git("remote", "get-url", "origin", cwd=tmp_path / "builds" / "job") == http.url(
        "project"
    )
    assert {r.user for r in http.requests if r.status == 200} == {"ci"}


def test_the_token_goes_to_its_own_host_only(base: Path, tmp_path: Path) -> None:
    """A submodule on another host (here another port) asks for credentials in vain."""
    inner = ServedRepo(base, "inner")
    inner.commit({"inner.txt": "inner"})
    ours = GitHttpServer(base, token=TOKEN).start()
    other = GitHttpServer(base, token="the-other-hosts-token").start()
    try:
        top = ServedRepo(base, "top")
        top.commit({"top.txt": "top"})
        add = ("-c", "protocol.file.allow=always", "submodule", "add", "-q", str(inner.bare))
        git(*add, "inner", cwd=top.work)
        git("config", "-f", ".gitmodules", "submodule.inner.url", other.url("inner"), cwd=top.work)
        sha = top.commit({}, "with a submodule elsewhere")
        with pytest.raises(RepositoryUnavailable, match="needs some"):
            GitCommitSource(ours.url("top"), sha, "main", credentials=token()).fetch(
                tmp_path / "job", {"GIT_SUBMODULE_STRATEGY": "normal"}, lambda _: None
            )
    finally:
        ours.stop()
        other.stop()
    assert {r.user for r in ours.requests if r.status == 200} == {"oauth2"}
    assert other.requests  # it was asked, and refused: no credentials came
    assert {r.tried for r in other.requests} == {None}
