"""Seal every stored secret again under the secret box's current key.

After a new key is put in front of the key ring (``ferrous secrets rotate-key``), the old
values still open with the old keys; resealing them is what lets an operator remove an old
key afterwards. Each value is opened and sealed again with the same owner binding: the
projects' repository credentials, webhook secrets and forge tokens, and every secret
variable (the instance's and the projects'). One transaction: it all changes or nothing
does, and a value that does not open stops it before anything is written.
"""

from __future__ import annotations

import dataclasses

from ferrous.application.commands import ResealSecrets
from ferrous.application.dependencies import Dependencies
from ferrous.application.forge_settings import reseal_forge_token
from ferrous.application.ports import UnitOfWork
from ferrous.application.project_credentials import reseal_credentials
from ferrous.application.secret_variables import secret_context
from ferrous.application.webhook_secret import reseal_webhook_secret
from ferrous.domain.errors import ConfigInvalid


async def reseal_secrets(cmd: ResealSecrets, uow: UnitOfWork, deps: Dependencies) -> int:
    """How many values were sealed again."""
    box = deps.secret_box
    if box is None:
        raise ConfigInvalid("this server has no secret box: there is nothing to reseal")
    count = 0
    for project_id in cmd.project_ids:
        project = await uow.projects.get(project_id)
        resealed = sum(
            (
                reseal_credentials(project, box),
                reseal_webhook_secret(project, box),
                reseal_forge_token(project, box),
            )
        )
        if resealed:
            await uow.projects.save(project)
            count += resealed
    for owner in (None, *cmd.project_ids):
        for secret in await uow.secret_variables.list_for(owner):
            context = secret_context(secret.project_id, secret.name)
            plaintext = box.decrypt(secret.sealed, context=context)
            sealed = box.encrypt(plaintext, context=context)
            await uow.secret_variables.save(dataclasses.replace(secret, sealed=sealed))
            count += 1
    await uow.commit()
    return count
