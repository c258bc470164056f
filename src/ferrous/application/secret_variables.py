"""Secret variables: sealed on the way in, opened only into the claim of a job that gets them.

A value is sealed bound to its owner and name (the box's ``context``), so a sealed text
copied to another row, or another project, does not open.

What a job gets (``job_secrets``), in GitLab's order:

1. the variables that apply: unprotected ones always, protected ones only when the build's
   ref is protected (``Build.protected_ref``: decided when it was created);
2. of those, the instance's, then the project's, a project variable replacing an instance
   one of the same name;
3. a variable given with the trigger (a manual run's, a schedule's, a trigger token's
   ``variables``) beats a secret of the same name, as in GitLab: the job then gets the
   trigger's value and the secret is not sent at all.

They reach the job's shell as plain environment variables, taken verbatim (a ``$`` in a value
is not a reference). The pipeline file's ``variables:`` are expanded when the build is
created, before any secret is known, so they cannot refer to one: scripts can.

The claim also lists the values the agent must mask in the log (``mask``): the masked
secrets, and the repository credentials' token or key, which the agent holds as well.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ferrous.application.ports import SecretBox, UnitOfWork
from ferrous.domain.build import Build
from ferrous.domain.errors import ConfigInvalid
from ferrous.domain.repo_credentials import RepoCredentials
from ferrous.domain.secret_variable import SecretVariable, is_protected_ref

#: GitLab's predefined variable saying whether the job got the protected variables.
REF_PROTECTED = "CI_COMMIT_REF_PROTECTED"


def secret_context(project_id: str | None, name: str) -> bytes:
    owner = f"project:{project_id}" if project_id is not None else "instance"
    return f"{owner}:secret-variable:{name}".encode()


def seal_value(value: str, project_id: str | None, name: str, box: SecretBox | None) -> str:
    if box is None:
        raise ConfigInvalid("this server has no secret box: it cannot keep secret variables")
    return box.encrypt(value.encode("utf-8"), context=secret_context(project_id, name))


def open_value(secret: SecretVariable, box: SecretBox | None) -> str:
    """The value in clear; raises a FerrousError when it does not open."""
    if box is None:
        raise ConfigInvalid(f"secret variable {secret.name} is stored but no secret box is set")
    context = secret_context(secret.project_id, secret.name)
    return box.decrypt(secret.sealed, context=context).decode("utf-8")


def build_is_protected(
    *,
    branch: str | None,
    tag: str | None,
    default_branch: str,
    source: str,
    by_ref: bool,
) -> bool:
    """Whether a new build's jobs get the protected secrets: its ref is protected
    (``is_protected_ref``) and its commit is the one the ref named (``by_ref``: no commit
    was given, or the one given is the ref's, or a forge's push said so), since anyone who
    may trigger could otherwise run any commit under the default branch's name. Never a
    merge request's pipeline: its commit comes from the request's branch (or a fork)."""
    if source == "merge_request_event" or not by_ref:
        return False
    return is_protected_ref(branch=branch, tag=tag, default_branch=default_branch)


@dataclass(frozen=True, slots=True)
class JobSecrets:
    """What a claimed job gets: its secret variables and the values to mask in its log."""

    variables: dict[str, str]
    mask: tuple[str, ...]

    def into(self, payload: dict[str, Any]) -> dict[str, Any]:
        """The claim's payload with them; its per-run values (``CI_JOB_ID``...) stay."""
        return {
            **payload,
            "variables": {**self.variables, **payload["variables"]},
            "mask": list(self.mask),
        }


async def job_secrets(
    uow: UnitOfWork, box: SecretBox | None, build: Build, credentials: RepoCredentials | None
) -> JobSecrets:
    """The secrets a job of ``build`` gets; see the module docstring for which."""

    def applies(secret: SecretVariable) -> bool:
        return build.protected_ref or not secret.protected

    chosen = {s.name: s for s in await uow.secret_variables.list_for(None) if applies(s)}
    chosen.update(
        {s.name: s for s in await uow.secret_variables.list_for(build.project_id) if applies(s)}
    )
    variables: dict[str, str] = {}
    mask: list[str] = []
    for name, secret in chosen.items():
        if name in build.variables:  # the trigger's value wins
            continue
        value = open_value(secret, box)
        variables[name] = value
        if secret.masked:
            mask.append(value)
    if credentials is not None:
        mask.extend(credentials.secrets)
    variables[REF_PROTECTED] = "true" if build.protected_ref else "false"
    return JobSecrets(variables=variables, mask=tuple(dict.fromkeys(mask)))
