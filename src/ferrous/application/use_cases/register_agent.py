"""An agent joins: it gets its own token, shown once and stored hashed.

With a registration token the use is counted in the same transaction as the new agent, so a
registration that fails afterwards gives the use back, and a token with ``max_uses`` admits
exactly that many agents however many race for it.
"""

from __future__ import annotations

import hashlib
import secrets

from ferrous.application.commands import RegisterAgent
from ferrous.application.dependencies import Dependencies
from ferrous.application.ports import UnitOfWork
from ferrous.domain.agent import Agent
from ferrous.domain.errors import InvalidCredentials, NotFound

AGENT_TOKEN_PREFIX = "fra_"


def hash_token(token: str) -> str:
    """Tokens are long random strings, so a fast hash is enough (unlike passwords)."""
    return hashlib.sha256(token.encode()).hexdigest()


async def register_agent(
    cmd: RegisterAgent, uow: UnitOfWork, deps: Dependencies
) -> tuple[Agent, str]:
    now = deps.clock.now()
    if cmd.registration_token is not None:
        try:
            await uow.registration_tokens.spend(hash_token(cmd.registration_token), now)
        except NotFound:
            raise InvalidCredentials("wrong agent registration token") from None
    token = AGENT_TOKEN_PREFIX + secrets.token_urlsafe(32)
    agent = Agent.register(
        name=cmd.name,
        token_hash=hash_token(token),
        labels=frozenset(cmd.labels),
        capacity=cmd.capacity,
        platform=dict(cmd.platform),
        now=now,
        embedded=cmd.embedded,
    )
    await uow.agents.add(agent)
    await uow.commit()
    return agent, token
