"""In-memory API tokens, with the SQL adapter's semantics.

As with trigger tokens, a unit of work stages tokens added, owners' edits (``save``: name
and revocation) and uses (``touch``) apart, as the SQL adapter writes them with separate
statements: a revocation never undoes a use stamped meanwhile, nor a use a revocation.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import datetime

from ferrous.domain.api_token import ApiToken
from ferrous.domain.errors import Conflict, NotFound
from ferrous.infrastructure.memory.store import InMemoryStore


@dataclass(eq=False)
class _Staged:
    added: dict[str, ApiToken] = field(default_factory=dict)
    edits: dict[str, tuple[str, datetime | None]] = field(default_factory=dict)
    touches: dict[str, tuple[datetime, datetime]] = field(default_factory=dict)  # now, unless


def _touched(token: ApiToken, now: datetime, unless_since: datetime) -> None:
    if token.last_used_at is None or token.last_used_at < unless_since:
        token.last_used_at = now


class InMemoryApiTokenRepository:
    def __init__(self, store: InMemoryStore) -> None:
        self._store = store
        self._staged = _Staged()

    def _current(self, token_id: str) -> ApiToken | None:
        base = self._staged.added.get(token_id) or self._store.api_tokens.get(token_id)
        if base is None:
            return None
        token = copy.copy(base)
        if token_id in self._staged.edits:
            token.name, token.revoked_at = self._staged.edits[token_id]
        if token_id in self._staged.touches:
            _touched(token, *self._staged.touches[token_id])
        return token

    def _all(self) -> list[ApiToken]:
        ids = self._store.api_tokens.keys() | self._staged.added.keys()
        return [token for token_id in ids if (token := self._current(token_id)) is not None]

    async def add(self, token: ApiToken) -> None:
        if any(o.id == token.id or o.token_hash == token.token_hash for o in self._all()):
            raise Conflict(f"API token {token.id} or its hash exists already")
        self._staged.added[token.id] = copy.copy(token)

    async def get(self, token_id: str) -> ApiToken:
        token = self._current(token_id)
        if token is None:
            raise NotFound(f"no API token {token_id}")
        return token

    async def get_by_hash(self, token_hash: str) -> ApiToken:
        for token in self._all():
            if token.token_hash == token_hash:
                return token
        raise NotFound("no API token has this hash")

    async def save(self, token: ApiToken) -> None:
        if self._current(token.id) is None:
            raise NotFound(f"no API token {token.id}")
        self._staged.edits[token.id] = (token.name, token.revoked_at)

    async def touch(self, token_id: str, now: datetime, *, unless_since: datetime) -> None:
        if self._current(token_id) is not None:
            self._staged.touches[token_id] = (now, unless_since)

    def check(self) -> None:
        committed = self._store.api_tokens
        hashes = {token.token_hash for token in committed.values()}
        for token in self._staged.added.values():
            if token.id in committed or token.token_hash in hashes:
                raise Conflict(f"API token {token.id} or its hash exists already")

    def apply(self) -> None:
        """On commit, after ``check``: edits and uses apply to what is committed then."""
        committed = self._store.api_tokens
        for token_id, token in self._staged.added.items():
            committed[token_id] = copy.copy(token)
        for token_id, (name, revoked_at) in self._staged.edits.items():
            stored = copy.copy(committed[token_id])
            stored.name, stored.revoked_at = name, revoked_at
            committed[token_id] = stored
        for token_id, (now, unless_since) in self._staged.touches.items():
            stored = copy.copy(committed[token_id])
            _touched(stored, now, unless_since)
            committed[token_id] = stored
