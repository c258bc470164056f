"""``GitAccess``: what git gets for each kind of credentials, and what it never gets."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

from ferrous.domain.repo_credentials import CredentialKind, RepoCredentials
from ferrous.git_remote.access import GitAccess

TOKEN = RepoCredentials(kind=CredentialKind.HTTPS_TOKEN, token="s3cret-token")
KEY = RepoCredentials(
    kind=CredentialKind.SSH_KEY,
    private_key="-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----",
)


def askpass(env: dict[str, str], prompt: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [env["GIT_ASKPASS"], prompt], env=env, capture_output=True, text=True, check=False
    )


def test_the_askpass_script_answers_for_its_host_only() -> None:
    with GitAccess("https://git.example.com:8443/ci/app.git", TOKEN) as access:
        env = access.env({"PATH": os.environ["PATH"], "GIT_ASKPASS": "/their/askpass"})
        script = Path(env["GIT_ASKPASS"])
        user = askpass(env, "Username for 'https://git.example.com:8443': ")
        password = askpass(env, "Password for 'https://oauth2@git.example.com:8443': ")
        elsewhere = askpass(env, "Password for 'https://oauth2@evil.example.com': ")
        other_port = askpass(env, "Username for 'https://git.example.com': ")
        assert stat.S_IMODE(script.parent.stat().st_mode) == 0o700

    assert (user.stdout, password.stdout) == ("oauth2\n", "s3cret-token\n")
    assert (elsewhere.returncode, elsewhere.stdout) == (1, "")
    assert (other_port.returncode, other_port.stdout) == (1, "")
    assert not script.exists()
    assert "s3cret-token" not in " ".join(access.config)
    assert access.scrub("Authorization: Basic b2F1dGgyOnMzY3JldC10b2tlbg==") == (
        "Authorization: Basic [MASKED]"
    )


def test_an_ssh_key_goes_through_a_private_file() -> None:
    with GitAccess("git@git.example.com:ci/app.git", KEY) as access:
        env = access.env({"GIT_SSH_COMMAND": "ssh -i ~/.ssh/theirs", "GIT_TRACE_CURL": "1"})
        words = env["GIT_SSH_COMMAND"].split()
        key = Path(words[words.index("-i") + 1])
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        assert key.read_text().endswith("-----END OPENSSH PRIVATE KEY-----\n")
        assert "StrictHostKeyChecking=accept-new" in words

    assert "GIT_TRACE_CURL" not in env
    assert "AAAA" not in env["GIT_SSH_COMMAND"]
    assert not key.exists()


def test_a_password_in_the_url_becomes_a_token() -> None:
    access = GitAccess("https://ci:p%40ss@git.example.com/app.git")

    assert access.url == "https://git.example.com/app.git"
    assert access.credentials == RepoCredentials(
        kind=CredentialKind.HTTPS_TOKEN, username="ci", token="p@ss"
    )


def test_without_credentials_the_machine_s_own_setup_stays() -> None:
    with GitAccess("ssh://git@git.example.com/app.git") as access:
        env = access.env({"GIT_SSH_COMMAND": "ssh -i ~/.ssh/deploy"})

    assert env["GIT_SSH_COMMAND"] == "ssh -i ~/.ssh/deploy"
    assert env["GIT_TERMINAL_PROMPT"] == "0"
