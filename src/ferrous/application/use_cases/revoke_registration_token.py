"""An admin revokes an agent registration token: no agent can register with it any more.

Agents that registered with it keep their own agent tokens and go on working; revoking is
about the door, not about who already came in.
"""

from __future__ import annotations

from ferrous.application.commands import RevokeRegistrationToken
from ferrous.application.dependencies import Dependencies
from ferrous.application.ports import UnitOfWork
from ferrous.domain.registration_token import RegistrationToken


async def revoke_registration_token(
    cmd: RevokeRegistrationToken, uow: UnitOfWork, deps: Dependencies
) -> RegistrationToken:
    token = await uow.registration_tokens.get(cmd.token_id)
    token.revoke(deps.clock.now())
    await uow.registration_tokens.save(token)
    await uow.commit()
    return token
