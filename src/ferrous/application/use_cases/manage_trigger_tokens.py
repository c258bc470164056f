"""A project's maintainer creates and revokes its pipeline trigger tokens.

The plain token is returned once, by ``create_trigger_token``; only its hash is stored, so a
lost token cannot be shown again: revoke it and create another. A token is revoked through
its project, so that a token id guessed from another project's listing changes nothing.
"""

from __future__ import annotations

from ferrous.application.commands import CreateTriggerToken, RevokeTriggerToken
from ferrous.application.dependencies import Dependencies
from ferrous.application.ports import UnitOfWork
from ferrous.application.secret_tokens import expiry, new_secret
from ferrous.domain.errors import NotFound
from ferrous.domain.trigger_token import TRIGGER_TOKEN_PREFIX, TriggerToken


async def create_trigger_token(
    cmd: CreateTriggerToken, uow: UnitOfWork, deps: Dependencies
) -> tuple[TriggerToken, str]:
    project = await uow.projects.get(cmd.project_id)
    now = deps.clock.now()
    plain, token_hash = new_secret(TRIGGER_TOKEN_PREFIX)
    token = TriggerToken.issue(
        project_id=project.id,
        token_hash=token_hash,
        now=now,
        description=cmd.description,
        expires_at=expiry(now, cmd.expires_in, cmd.expires_at),
    )
    await uow.trigger_tokens.add(token)
    await uow.commit()
    return token, plain


async def revoke_trigger_token(
    cmd: RevokeTriggerToken, uow: UnitOfWork, deps: Dependencies
) -> TriggerToken:
    """Builds it started stay; revoking again changes nothing."""
    token = await uow.trigger_tokens.get(cmd.token_id)
    if token.project_id != cmd.project_id:
        raise NotFound(f"no trigger token {cmd.token_id} in this project")
    token.revoke(deps.clock.now())
    await uow.trigger_tokens.save(token)
    await uow.commit()
    return token
