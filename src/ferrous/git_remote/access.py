"""One remote's credentials, handed to git without a command line ever holding them.

- HTTPS token: ``GIT_ASKPASS`` names a small script that prints the user name or the token
  from environment variables, and only when git asks for the project's own host (a
  submodule on the same host gets them too; one elsewhere gets nothing). Credential helpers
  are switched off (``-c credential.helper=``), so no helper of the machine stores the token.
- SSH key: ``GIT_SSH_COMMAND`` runs ``ssh -i <key file, 0600> -o IdentitiesOnly=yes`` with
  ``BatchMode`` (no prompt can hang a job) and a known_hosts file of our own: the
  credential's lines with ``StrictHostKeyChecking=yes``, else ``accept-new`` into an empty
  file (trust on first use, every time: no protection against a man in the middle).
- A ``user:password@`` in an http(s) URL is taken out of the URL and used as a token, so
  that it stays off argv too.

The files live in a private temporary folder (0700) removed when the ``with`` block ends.
"""

from __future__ import annotations

import base64
import os
import shlex
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Self
from urllib.parse import unquote, urlsplit

from ferrous.domain.repo_credentials import (
    NO_CREDENTIALS,
    CredentialKind,
    RepoCredentials,
    scrub,
    url_host,
    url_scheme,
    without_userinfo,
)

ASKPASS = """#!/bin/sh
# Written by Ferrous CI: answers git's prompts for one host only, from the environment.
case "$1" in
  Username*"//$FERROUS_GIT_HOST'"*) printf '%s\\n' "$FERROUS_GIT_USERNAME" ;;
  Password*"@$FERROUS_GIT_HOST'"*|Password*"//$FERROUS_GIT_HOST'"*)
    printf '%s\\n' "$FERROUS_GIT_PASSWORD" ;;
  *) exit 1 ;;
esac
"""
#: Variables of the machine's environment that would print what goes over the wire.
_TRACES = ("GIT_TRACE_CURL", "GIT_CURL_VERBOSE", "GIT_TRACE_PACKET", "GIT_TRACE_REDACT")
#: ... and those our credentials replace (others' askpass or ssh command would get them).
_REPLACED = {
    CredentialKind.NONE: (),
    CredentialKind.HTTPS_TOKEN: ("GIT_ASKPASS", "SSH_ASKPASS"),
    CredentialKind.SSH_KEY: ("GIT_SSH", "GIT_SSH_COMMAND", "GIT_SSH_VARIANT"),
}


def split_userinfo(url: str, credentials: RepoCredentials) -> tuple[str, RepoCredentials]:
    """The URL to put on argv, and the credentials to use with it."""
    parts = urlsplit(url)
    if url_scheme(url) not in ("http", "https") or "@" not in parts.netloc:
        return url, credentials
    if parts.password is None:  # a user name alone is no secret
        return url, credentials
    if credentials.kind is CredentialKind.NONE:
        credentials = RepoCredentials(
            kind=CredentialKind.HTTPS_TOKEN,
            username=unquote(parts.username or ""),
            token=unquote(parts.password),
        )
    return without_userinfo(url), credentials


class GitAccess:
    """``with GitAccess(url, credentials) as access:`` then ``access.env()``, ``access.config``.

    ``url`` is the URL without secrets; ``scrub`` cleans what git printed.
    """

    def __init__(self, url: str, credentials: RepoCredentials | None = None) -> None:
        self.url, self.credentials = split_userinfo(url, credentials or NO_CREDENTIALS)
        self.host = url_host(self.url)
        self._folder: Path | None = None
        self._env: dict[str, str] = {}

    @property
    def secrets(self) -> tuple[str, ...]:
        """The values to mask, with the token as an ``Authorization: Basic`` header has it."""
        found = self.credentials.secrets
        if self.credentials.kind is CredentialKind.HTTPS_TOKEN:
            pair = f"{self.credentials.user_for(self.url)}:{self.credentials.token}"
            found += (base64.b64encode(pair.encode()).decode(),)
        return found

    @property
    def config(self) -> list[str]:
        """``-c`` options for every git command of this access (they carry no secret)."""
        if self.credentials.kind is CredentialKind.HTTPS_TOKEN:
            return ["-c", "credential.helper=", "-c", "core.askPass="]
        return []

    def scrub(self, text: str) -> str:
        return scrub(text, self.secrets)

    def env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        dropped = (*_TRACES, *_REPLACED[self.credentials.kind])
        env = {k: v for k, v in (os.environ if base is None else base).items() if k not in dropped}
        env.update(GIT_TERMINAL_PROMPT="0", GCM_INTERACTIVE="never", LC_ALL="C")
        return {**env, **self._env}

    def __enter__(self) -> Self:
        kind = self.credentials.kind
        if kind is CredentialKind.NONE:
            return self
        self._folder = Path(tempfile.mkdtemp(prefix="ferrous-git-"))  # 0700
        try:
            if kind is CredentialKind.HTTPS_TOKEN:
                self._env = self._askpass(self._folder)
            else:
                self._env = self._ssh(self._folder)
        except BaseException:
            self._remove()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._remove()

    def _remove(self) -> None:
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None
        self._env = {}

    def _askpass(self, folder: Path) -> dict[str, str]:
        script = _write(folder / "askpass", ASKPASS, 0o700)
        return {
            "GIT_ASKPASS": str(script),
            "FERROUS_GIT_HOST": self.host,
            "FERROUS_GIT_USERNAME": self.credentials.user_for(self.url),
            "FERROUS_GIT_PASSWORD": self.credentials.token,
        }

    def _ssh(self, folder: Path) -> dict[str, str]:
        key_text = self.credentials.private_key.replace("\r\n", "\n").strip() + "\n"
        key = _write(folder / "key", key_text, 0o600)
        known = self.credentials.known_hosts.strip()
        hosts = _write(folder / "known_hosts", known + "\n" if known else "", 0o600)
        command = [
            "ssh",
            "-i",
            str(key),
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "IdentityAgent=none",
            "-o",
            "BatchMode=yes",
            "-o",
            f"UserKnownHostsFile={hosts}",
            "-o",
            "GlobalKnownHostsFile=/dev/null",
            "-o",
            f"StrictHostKeyChecking={'yes' if known else 'accept-new'}",
        ]
        return {"GIT_SSH_COMMAND": shlex.join(command), "GIT_SSH_VARIANT": "ssh"}


def _write(path: Path, text: str, mode: int) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    return path
