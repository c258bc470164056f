"""Agents authenticate every protocol call with their own token (``Authorization: Bearer``).

The token is hashed as registration stored it and looked up through ``ApiServices``;
positive answers are cached for a few seconds, because an agent calls often (a claim
long-poll, a heartbeat, and one call per log chunk).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ferrous.api.errors import Unauthenticated
from ferrous.api.log_context import bind_log_ids
from ferrous.api.services import AgentLookup
from ferrous.application.use_cases.register_agent import hash_token
from ferrous.domain.errors import NotFound

MAX_CACHED = 4096

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="AgentToken",
    description="The agent token returned by `POST /api/v1/agent/register`.",
)


class AgentAuthenticator:
    def __init__(
        self,
        lookup: AgentLookup,
        cache_seconds: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lookup = lookup
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._cache: dict[str, tuple[str, float]] = {}

    async def agent_id(self, token: str | None) -> str:
        """The id of the agent holding ``token``; raises Unauthenticated."""
        if not token:
            raise Unauthenticated("this call needs the agent token: Authorization: Bearer ...")
        token_hash = hash_token(token)
        now = self._clock()
        cached = self._cache.get(token_hash)
        if cached is not None and cached[1] > now:
            return cached[0]
        try:
            found = await self._lookup(token_hash)
        except NotFound:
            found = None
        if found is None:
            self._cache.pop(token_hash, None)
            raise Unauthenticated("unknown agent token")
        if len(self._cache) >= MAX_CACHED:
            self._cache.clear()
        if self._cache_seconds > 0:
            self._cache[token_hash] = (found, now + self._cache_seconds)
        return found


async def authenticated_agent(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    """The calling agent's id (a FastAPI dependency); 401 without a valid agent token."""
    authenticator: AgentAuthenticator = request.app.state.agent_authenticator
    agent_id = await authenticator.agent_id(credentials.credentials if credentials else None)
    bind_log_ids(agent_id=agent_id)  # the rest of the request's log lines name the agent
    return agent_id
