"""A project's forge link: changed from what a person gives, the token sealed on the way in.

The status token is sealed like the repository credentials, bound to its project (the
box's ``context``), and opened only by the status sender, right before a request.
"""

from __future__ import annotations

import dataclasses

from ferrous.application.ports import SecretBox
from ferrous.domain.errors import ConfigInvalid, InvalidValue
from ferrous.domain.forge import ForgeKind, ForgeLink, ForgeSettings
from ferrous.domain.project import Project

MAX_TOKEN = 4000


def _context(project_id: str) -> bytes:
    return f"project:{project_id}:forge-token".encode()


def apply_forge(project: Project, settings: ForgeSettings, box: SecretBox | None) -> None:
    """Change ``project.forge`` as asked; the result is checked against the repository URL.

    Raises InvalidValue for settings that cannot work (no token, an API or repository that
    cannot be derived, a malformed value).
    """
    if not settings.given:
        return
    if settings.kind is ForgeKind.NONE:
        project.forge = None
        return
    current = project.forge
    kind = settings.kind or (current.kind if current else None)
    if kind is None:
        raise InvalidValue("give forge (github, gitlab or gitea) with the other forge settings")
    api_url = current.api_url if current else None
    repo = current.repo if current else None
    if settings.api_url is not None:
        api_url = settings.api_url.strip() or None
    if settings.repo is not None:
        repo = settings.repo.strip() or None
    sealed = current.token if current else ""
    if settings.token is not None:
        sealed = _seal(settings.token, project.id, box)
    if not sealed:
        raise InvalidValue(f"a {kind} forge needs forge_token to post commit statuses")
    link = ForgeLink(kind=kind, api_url=api_url, repo=repo, token=sealed)
    link.target(project.repo_url)  # raises what cannot work
    project.forge = link


def check_forge(project: Project) -> None:
    """After the repository URL changed: what was derived from it must still derive."""
    if project.forge is not None:
        project.forge.target(project.repo_url)


def _seal(token: str, project_id: str, box: SecretBox | None) -> str:
    token = token.strip()
    if not token or len(token) > MAX_TOKEN or any(c in token for c in "\r\n\0"):
        raise InvalidValue("forge_token must be one line of text")
    if box is None:
        raise ConfigInvalid("this server has no secret box: projects cannot hold tokens")
    return box.encrypt(token.encode(), context=_context(project_id))


def open_token(project_id: str, link: ForgeLink, box: SecretBox | None) -> str:
    """The token in clear, for one request; raises a FerrousError when it cannot open."""
    if box is None:
        raise ConfigInvalid("a project has a forge token but no secret box is set")
    return box.decrypt(link.token, context=_context(project_id)).decode()


def reseal_forge_token(project: Project, box: SecretBox) -> bool:
    """Seal the project's forge token again (under the box's current key); False: none."""
    link = project.forge
    if link is None or not link.token:
        return False
    plaintext = box.decrypt(link.token, context=_context(project.id))
    project.forge = dataclasses.replace(
        link, token=box.encrypt(plaintext, context=_context(project.id))
    )
    return True
