"""Where a project reports commit statuses: its forge's kind, API, repository and token.

A project links to one forge (GitHub, GitLab or Gitea/Forgejo). Only what a person gave is
stored (``ForgeLink``): an API URL or repository left out is derived from the repository URL
whenever it is needed (``ForgeLink.target``), so that changing the project's URL moves the
statuses with it. The token is stored sealed by the secret box, like the repository
credentials, and is never shown.

Derivation: ``https://host/owner/name.git``, ``git@host:owner/name.git`` and
``ssh://git@host:22/owner/name`` all name ``owner/name`` on ``host``. The API is
``https://api.github.com`` for github.com (``https://host/api/v3`` for GitHub Enterprise),
``https://host/api/v4`` for GitLab and ``https://host/api/v1`` for Gitea (``http`` when the
repository URL is plain http: a self-hosted forge without TLS).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from urllib.parse import urlsplit

from ferrous.domain.errors import InvalidValue
from ferrous.domain.repo_credentials import url_host, url_scheme

GITHUB_API = "https://api.github.com"
_SEGMENT = r"[A-Za-z0-9_.][A-Za-z0-9_.-]*"
_OWNER_NAME = re.compile(rf"^{_SEGMENT}/{_SEGMENT}$")
_GITLAB_PATH = re.compile(rf"^(?:\d+|{_SEGMENT}(?:/{_SEGMENT})+)$")
_SCP_PATH = re.compile(r"^(?:[^@/\s]+@)?[^:/\s]+:(?P<path>.*)$")


class ForgeKind(StrEnum):
    NONE = "none"  # the project reports to no forge
    GITHUB = "github"
    GITLAB = "gitlab"
    GITEA = "gitea"  # Gitea and Forgejo


@dataclass(frozen=True, slots=True, kw_only=True)
class ForgeTarget:
    """A forge's API and the repository on it, resolved: what a status client needs."""

    kind: ForgeKind
    api_url: str  # without a trailing slash
    repo: str  # ``owner/name``; GitLab: the project's path or numeric id


@dataclass(frozen=True, slots=True, kw_only=True)
class ForgeLink:
    """A project's forge as stored: None for what is derived from the repository URL."""

    kind: ForgeKind  # never NONE: a project without a forge has no link
    api_url: str | None = None
    repo: str | None = None
    token: str = field(default="", repr=False)  # sealed by the secret box

    def target(self, repo_url: str) -> ForgeTarget:
        """The API and repository, derived where not given; InvalidValue saying what to set
        when they cannot be derived."""
        if self.kind is ForgeKind.NONE:
            raise InvalidValue("a forge link needs a forge kind")
        found = _repository(repo_url)
        api_url = self.api_url or _default_api(self.kind, found)
        if api_url is None:
            raise InvalidValue(
                f"the {self.kind} API URL cannot be derived from the repository URL "
                f"{repo_url!r}: give forge_api_url"
            )
        repo = self.repo or (found[2] if found else None)
        if repo is None:
            raise InvalidValue(
                f"the {self.kind} repository cannot be derived from the repository URL "
                f"{repo_url!r}: give forge_repo"
            )
        return ForgeTarget(
            kind=self.kind, api_url=check_api_url(api_url), repo=check_repo(self.kind, repo)
        )


def check_api_url(url: str) -> str:
    """An http(s) URL without query or fragment, returned without its trailing slash."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidValue(f"forge_api_url must be an http(s) URL, not {url!r}")
    if parts.query or parts.fragment or "@" in parts.netloc:
        raise InvalidValue("forge_api_url cannot hold a query, a fragment or credentials")
    return url.strip().rstrip("/")


def check_repo(kind: ForgeKind, repo: str) -> str:
    """``owner/name`` (GitHub, Gitea) or a GitLab project path (``group/sub/name``) or id."""
    pattern = _GITLAB_PATH if kind is ForgeKind.GITLAB else _OWNER_NAME
    if not pattern.match(repo) or ".." in repo:
        wanted = "a project path like group/name, or its numeric id"
        raise InvalidValue(
            f"forge_repo {repo!r} must be " + (wanted if kind is ForgeKind.GITLAB else "owner/name")
        )
    return repo


def _repository(repo_url: str) -> tuple[str, str, str] | None:
    """(API scheme, host, repository path) of a remote URL; None for a local one."""
    scheme = url_scheme(repo_url)
    host = url_host(repo_url)
    if scheme == "file" or not host:
        return None
    if "://" in repo_url:
        path = urlsplit(repo_url).path
    else:
        scp = _SCP_PATH.match(repo_url)
        path = scp["path"] if scp else ""
    path = path.strip("/").removesuffix(".git").removesuffix("/")
    if scheme not in ("http", "https"):
        host = host.rsplit(":", 1)[0] if not host.startswith("[") else host  # drop ssh port
    return ("http" if scheme == "http" else "https", host, path) if path else None


def _default_api(kind: ForgeKind, found: tuple[str, str, str] | None) -> str | None:
    if kind is ForgeKind.GITHUB:
        if found is None or found[1].lower() in ("github.com", "www.github.com"):
            return GITHUB_API
        return f"{found[0]}://{found[1]}/api/v3"  # GitHub Enterprise Server
    if found is None:
        return None
    version = "v4" if kind is ForgeKind.GITLAB else "v1"
    return f"{found[0]}://{found[1]}/api/{version}"


@dataclass(frozen=True, slots=True, kw_only=True)
class ForgeSettings:
    """What a person asks to change; None keeps the stored value.

    ``kind=NONE`` removes the link (and its token). An empty ``api_url`` or ``repo`` goes
    back to deriving it from the repository URL. ``token`` is in clear here, on its way to
    the secret box.
    """

    kind: ForgeKind | None = None
    api_url: str | None = None
    repo: str | None = None
    token: str | None = field(default=None, repr=False)

    @property
    def given(self) -> bool:
        return any(v is not None for v in (self.kind, self.api_url, self.repo, self.token))


def effective(link: ForgeLink | None, repo_url: str) -> tuple[ForgeKind, str | None, str | None]:
    """The kind, API URL and repository a project's statuses go to, for people to read:
    derived where not given (the stored values when that no longer works)."""
    if link is None:
        return ForgeKind.NONE, None, None
    try:
        target = link.target(repo_url)
    except InvalidValue:
        return link.kind, link.api_url, link.repo
    return target.kind, target.api_url, target.repo
