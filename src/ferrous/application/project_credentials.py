"""A project's repository credentials: sealed on the way in, opened only where git needs them.

They are opened in two places: to read the pipeline file (the server's mirror) and in the
payload of a claimed job, for the one agent holding its lease. The sealed value is bound to
its project (the box's ``context``), so a value copied to another project's row never opens.
"""

from __future__ import annotations

import json

from ferrous.application.ports import SecretBox
from ferrous.domain.errors import ConfigInvalid, InvalidValue
from ferrous.domain.project import Project
from ferrous.domain.repo_credentials import CredentialKind, RepoCredentials, SealedCredentials


def _context(project: Project) -> bytes:
    return f"project:{project.id}:repository-credentials".encode()


def seal(credentials: RepoCredentials, project: Project, box: SecretBox | None) -> None:
    """Set ``project.credentials`` (checked against its URL); kind ``none`` removes them.

    Raises InvalidValue for credentials that cannot be used with the URL.
    """
    credentials.check()
    credentials.check_url(project.repo_url)
    if credentials.kind is CredentialKind.NONE:
        project.credentials = None
        return
    if box is None:
        raise ConfigInvalid("this server has no secret box: projects cannot hold credentials")
    plaintext = json.dumps(credentials.to_json()).encode()
    sealed = box.encrypt(plaintext, context=_context(project))
    project.credentials = SealedCredentials(kind=credentials.kind, sealed=sealed)


def unseal(project: Project, box: SecretBox | None) -> RepoCredentials | None:
    """The project's credentials in clear, or None when it has none."""
    if project.credentials is None:
        return None
    if box is None:
        raise ConfigInvalid(f"project {project.name!r} has credentials but no secret box is set")
    plaintext = box.decrypt(project.credentials.sealed, context=_context(project))
    try:
        data = json.loads(plaintext)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidValue(f"the credentials of project {project.name!r} are damaged") from exc
    return RepoCredentials.from_json(data)


def reseal_credentials(project: Project, box: SecretBox) -> bool:
    """Seal the project's credentials again (under the box's current key); False: none."""
    if project.credentials is None:
        return False
    plaintext = box.decrypt(project.credentials.sealed, context=_context(project))
    sealed = box.encrypt(plaintext, context=_context(project))
    project.credentials = SealedCredentials(kind=project.credentials.kind, sealed=sealed)
    return True
