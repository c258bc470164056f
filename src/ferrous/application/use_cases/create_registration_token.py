"""An admin creates an agent registration token: the plain token is returned once, here.

Only its hash is stored (the same hash as agent tokens: the secret is long and random, so a
fast hash is enough), so a lost token cannot be shown again: revoke it and create another.
"""

from __future__ import annotations

from ferrous.application.commands import CreateRegistrationToken
from ferrous.application.dependencies import Dependencies
from ferrous.application.ports import UnitOfWork
from ferrous.application.secret_tokens import expiry, new_secret
from ferrous.domain.registration_token import REGISTRATION_TOKEN_PREFIX, RegistrationToken


async def create_registration_token(
    cmd: CreateRegistrationToken, uow: UnitOfWork, deps: Dependencies
) -> tuple[RegistrationToken, str]:
    now = deps.clock.now()
    plain, token_hash = new_secret(REGISTRATION_TOKEN_PREFIX)
    token = RegistrationToken.issue(
        token_hash=token_hash,
        now=now,
        description=cmd.description,
        expires_at=expiry(now, cmd.expires_in, cmd.expires_at),
        max_uses=cmd.max_uses,
    )
    await uow.registration_tokens.add(token)
    await uow.commit()
    return token, plain
