"""A project's maintainer (or, for the instance's, an admin) sets and deletes secret variables.

Setting is create-or-replace, keyed by (owner, name): the plain value is checked, sealed and
forgotten; nothing ever returns it. Two sets of one new name racing each other: the second
insert fails on the unique constraint and runs again (``StaleState``), and then replaces
what the first stored, as if they had come one after the other.
"""

from __future__ import annotations

from ferrous.application.commands import DeleteSecretVariable, SetSecretVariable
from ferrous.application.dependencies import Dependencies
from ferrous.application.ports import StaleState, UnitOfWork
from ferrous.application.secret_variables import seal_value
from ferrous.domain.errors import Conflict, NotFound
from ferrous.domain.secret_variable import SecretVariable, check_name, check_value


async def set_secret_variable(
    cmd: SetSecretVariable, uow: UnitOfWork, deps: Dependencies
) -> tuple[SecretVariable, bool]:
    """The variable as stored, and whether it was created (else replaced)."""
    name = check_name(cmd.name)
    check_value(cmd.value, masked=cmd.masked)
    if cmd.project_id is not None:
        await uow.projects.get(cmd.project_id)  # raises NotFound
    sealed = seal_value(cmd.value, cmd.project_id, name, deps.secret_box)
    now = deps.clock.now()
    secret = await uow.secret_variables.find(cmd.project_id, name)
    created = secret is None
    try:
        if secret is None:
            secret = SecretVariable.create(
                project_id=cmd.project_id,
                name=name,
                sealed=sealed,
                protected=cmd.protected,
                masked=cmd.masked,
                now=now,
                created_by=cmd.created_by,
            )
            await uow.secret_variables.add(secret)
        else:
            secret.replace(sealed=sealed, protected=cmd.protected, masked=cmd.masked, now=now)
            await uow.secret_variables.save(secret)
        await uow.commit()
    except Conflict as exc:  # the same name was added meanwhile: set it again, over it
        raise StaleState(f"secret variable {name} was added meanwhile") from exc
    return secret, created


async def delete_secret_variable(
    cmd: DeleteSecretVariable, uow: UnitOfWork, deps: Dependencies
) -> None:
    secret = await uow.secret_variables.find(cmd.project_id, cmd.name)
    if secret is None:
        raise NotFound(f"no secret variable {cmd.name}")
    await uow.secret_variables.remove(secret)
    await uow.commit()
