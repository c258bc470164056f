"""An admin creates an agent registration token: the plain token is returned once, here.

Only its hash is stored (the same hash as agent tokens: the secret is long and random, so a
fast hash is enough), so a lost token cannot be shown again: revoke it and create another.
"""

from __future__ import annotations

import secrets

from ferrous.application.commands import CreateRegistrationToken
from ferrous.application.dependencies import Dependencies
from ferrous.application.ports import UnitOfWork
from ferrous.application.use_cases.register_agent import hash_token
from ferrous.domain.errors import InvalidValue
from ferrous.domain.registration_token import REGISTRATION_TOKEN_PREFIX, RegistrationToken


async def create_registration_token(
    cmd: CreateRegistrationToken, uow: UnitOfWork, deps: Dependencies
) -> tuple[RegistrationToken, str]:
    if cmd.expires_in is not None and cmd.expires_at is not None:
        raise InvalidValue("give expires_in or expires_at, not both")
    now = deps.clock.now()
    expires_at = cmd.expires_at
    if cmd.expires_in is not None:
        expires_at = now + cmd.expires_in
    plain = REGISTRATION_TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = RegistrationToken.issue(
        token_hash=hash_token(plain),
        now=now,
        description=cmd.description,
        expires_at=expires_at,
        max_uses=cmd.max_uses,
    )
    await uow.registration_tokens.add(token)
    await uow.commit()
    return token, plain
