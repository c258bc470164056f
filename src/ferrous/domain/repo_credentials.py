"""How Ferrous CI reads a project's repository: its URL's kind and the credentials it needs.

A project's credentials are an HTTPS token (sent as the password of HTTP basic auth, which
GitHub, GitLab and Gitea all accept for tokens) or an SSH deploy key. They leave the server
only to the agent holding a job's lease; at rest they are sealed by the ``SecretBox`` port
(``SealedCredentials``), and the API only ever says which kind is set.

Secrets must never reach a command line, a log or an error message: ``scrub`` is the last
line of defence for text that came out of git, and the values' ``repr`` hides them.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ferrous.domain.errors import InvalidValue

MASK = "[MASKED]"
_SCP_LIKE = re.compile(r"^(?:[^@/\s]+@)?(?P<host>[^:/\s]+):(?!//)")
_USERINFO = re.compile(r"(?P<scheme>\b(?:https?|git|ftps?)://)[^/\s@]+@", re.IGNORECASE)
_PEM = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.+-----END [A-Z ]*PRIVATE KEY-----", re.S)


class CredentialKind(StrEnum):
    NONE = "none"
    HTTPS_TOKEN = "https_token"
    SSH_KEY = "ssh_key"


def url_scheme(url: str) -> str:
    """``https``, ``http``, ``ssh``, ``git`` or ``file`` (a plain path is ``file``)."""
    scheme, found, _ = url.partition("://")
    if found:
        return scheme.lower()
    scp = _SCP_LIKE.match(url)
    # git's rule: ``[user@]host:path`` is ssh unless a slash comes before the colon
    return "ssh" if scp and len(scp["host"]) > 1 and not url.startswith(".") else "file"


def url_host(url: str) -> str:
    """``host`` or ``host:port`` of a remote URL (empty for a local one)."""
    if url_scheme(url) == "file":
        return ""
    if "://" in url:
        return urlsplit(url).netloc.rsplit("@", 1)[-1]
    found = _SCP_LIKE.match(url)
    return found["host"] if found else ""


def without_userinfo(url: str) -> str:
    """``url`` without ``user:password@`` (http, https, git): what logs and argv may show."""
    parts = urlsplit(url)
    if parts.scheme.lower() in ("http", "https", "git") and "@" in parts.netloc:
        return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))
    return url


def default_username(url: str) -> str:
    """The user name that goes with a token: GitHub wants ``x-access-token`` for app tokens,
    GitLab ``oauth2``; both (and Gitea) accept any name with a personal access token."""
    return "x-access-token" if url_host(url).lower() == "github.com" else "oauth2"


def scrub(text: str, secrets: tuple[str, ...] = ()) -> str:
    """``text`` with URLs' userinfo removed and every secret value replaced by a mask."""
    text = _USERINFO.sub(lambda m: m["scheme"], text)
    for secret in sorted(secrets, key=len, reverse=True):
        for line in secret.splitlines() or [secret]:
            if len(line.strip()) >= 4:
                text = text.replace(line.strip(), MASK)
    return text


@dataclass(frozen=True, slots=True, kw_only=True)
class RepoCredentials:
    """What an agent or the server's mirror needs to read a repository; plain, in memory."""

    kind: CredentialKind = CredentialKind.NONE
    username: str = ""  # https_token; empty: ``default_username`` of the URL
    token: str = field(default="", repr=False)
    private_key: str = field(default="", repr=False)  # ssh_key: the PEM/OpenSSH text
    known_hosts: str = ""  # ssh_key: known_hosts lines for the host; empty: trust on first use

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RepoCredentials:
        """Raises InvalidValue for an unknown kind or a value that cannot be used."""
        try:
            kind = CredentialKind(str(data.get("kind", "none")))
        except ValueError:
            raise InvalidValue(
                f"credentials kind must be one of {', '.join(CredentialKind)}"
            ) from None
        credentials = cls(
            kind=kind,
            username=str(data.get("username") or ""),
            token=str(data.get("token") or ""),
            private_key=str(data.get("private_key") or ""),
            known_hosts=str(data.get("known_hosts") or ""),
        )
        credentials.check()
        return credentials

    def to_json(self) -> dict[str, str]:
        if self.kind is CredentialKind.HTTPS_TOKEN:
            return {"kind": self.kind.value, "username": self.username, "token": self.token}
        if self.kind is CredentialKind.SSH_KEY:
            data = {"kind": self.kind.value, "private_key": self.private_key}
            return {**data, "known_hosts": self.known_hosts} if self.known_hosts else data
        return {"kind": self.kind.value}

    def check(self) -> None:
        """The value alone makes sense (the URL is checked by ``check_url``)."""
        if self.kind is CredentialKind.HTTPS_TOKEN:
            if not self.token or any(c in self.token for c in "\r\n\0"):
                raise InvalidValue("an https_token needs a token of one line")
            if any(c in self.username for c in ":\r\n\0"):
                raise InvalidValue("a token's username cannot hold ':' or line breaks")
        elif self.kind is CredentialKind.SSH_KEY:
            if not _PEM.search(self.private_key):
                raise InvalidValue("an ssh_key needs a private key (-----BEGIN ... PRIVATE KEY)")
            if "\0" in self.known_hosts:
                raise InvalidValue("known_hosts must be text")

    def check_url(self, url: str) -> None:
        """Raises InvalidValue when these credentials cannot be used with ``url``."""
        scheme = url_scheme(url)
        if self.kind is CredentialKind.HTTPS_TOKEN and scheme not in ("https", "http"):
            raise InvalidValue(f"an https_token needs an http(s) repository URL, not {scheme}")
        if self.kind is CredentialKind.SSH_KEY and scheme != "ssh":
            raise InvalidValue(f"an ssh_key needs an ssh repository URL, not {scheme}")

    def user_for(self, url: str) -> str:
        return self.username or default_username(url)

    @property
    def secrets(self) -> tuple[str, ...]:
        return tuple(s for s in (self.token, self.private_key) if s)

    def fingerprint(self) -> str:
        """A short one-way digest: tells caches of different credentials apart."""
        canonical = json.dumps(self.to_json(), sort_keys=True).encode()
        return hashlib.sha256(canonical).hexdigest()[:16]


NO_CREDENTIALS = RepoCredentials()


@dataclass(frozen=True, slots=True, kw_only=True)
class SealedCredentials:
    """Credentials as a project stores them: the kind in clear, the rest sealed."""

    kind: CredentialKind
    sealed: str = field(repr=False)  # from ``SecretBox.encrypt`` of ``to_json()``

    def to_text(self) -> str:
        return json.dumps({"kind": self.kind.value, "sealed": self.sealed})

    @classmethod
    def from_text(cls, text: str) -> SealedCredentials:
        data = json.loads(text)
        return cls(kind=CredentialKind(data["kind"]), sealed=str(data["sealed"]))
