"""A project's webhook secret: sealed at rest, opened only to check a delivery's signature.

Forges sign deliveries with a secret both sides know (GitHub, Gitea, Gogs, Bitbucket) or send
it as a token (GitLab), so the server must keep it readable; it is sealed by the secret box
like repository credentials, bound to the project.
"""

from __future__ import annotations

from ferrous.application.ports import SecretBox
from ferrous.domain.errors import ConfigInvalid, InvalidValue
from ferrous.domain.project import Project

MIN_LENGTH = 16  # a guessable secret would make the signature check theatre
MAX_LENGTH = 1000


def _context(project: Project) -> bytes:
    return f"project:{project.id}:webhook-secret".encode()


def seal_webhook_secret(secret: str, project: Project, box: SecretBox | None) -> None:
    """Set ``project.webhook_secret``; an empty ``secret`` removes it (deliveries refused)."""
    if not secret:
        project.webhook_secret = None
        return
    if not MIN_LENGTH <= len(secret) <= MAX_LENGTH or not secret.isprintable():
        raise InvalidValue(f"a webhook secret is {MIN_LENGTH} to {MAX_LENGTH} printable characters")
    if box is None:
        raise ConfigInvalid("this server has no secret box: projects cannot hold webhook secrets")
    project.webhook_secret = box.encrypt(secret.encode(), context=_context(project))


def unseal_webhook_secret(project: Project, box: SecretBox | None) -> str | None:
    """The secret in clear, or None when the project has none."""
    if project.webhook_secret is None:
        return None
    if box is None:
        raise ConfigInvalid(f"project {project.name!r} has a webhook secret but no secret box")
    return box.decrypt(project.webhook_secret, context=_context(project)).decode()


def reseal_webhook_secret(project: Project, box: SecretBox) -> bool:
    """Seal the project's webhook secret again (under the box's current key); False: none."""
    if project.webhook_secret is None:
        return False
    plaintext = box.decrypt(project.webhook_secret, context=_context(project))
    project.webhook_secret = box.encrypt(plaintext, context=_context(project))
    return True
