"""In-memory agent registration tokens, with the SQL adapter's counting semantics.

A unit of work stages what it does to tokens: tokens added, admin edits (``save``) and uses
(``spend``). Edits and uses are kept apart, as the SQL adapter writes them with separate
statements, so a revocation never undoes a use counted meanwhile. On commit the uses are
checked again against the committed tokens: of two units of work that spent the last use,
the second to commit gets ``StaleState`` (the bus runs its command again, and ``spend`` then
refuses with the reason), where PostgreSQL would have made it wait and then refused.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime

from ferrous.application.ports import StaleState
from ferrous.domain.errors import Conflict, InvalidCredentials, NotFound
from ferrous.domain.registration_token import RegistrationToken
from ferrous.infrastructure.memory.store import InMemoryStore


@dataclass(eq=False)
class _Staged:
    added: dict[str, RegistrationToken] = field(default_factory=dict)
    edits: dict[str, tuple[str, datetime | None]] = field(default_factory=dict)
    uses: dict[str, list[datetime]] = field(default_factory=dict)


def _with_uses(token: RegistrationToken, uses: list[datetime]) -> RegistrationToken:
    """``token`` after ``uses`` (each checked like a registration would check it)."""
    token = dataclasses.replace(token)
    for now in uses:
        token.use(now)
    return token


class InMemoryRegistrationTokenRepository:
    def __init__(self, store: InMemoryStore) -> None:
        self._store = store
        self._staged = _Staged()

    def _base(self, token_id: str) -> RegistrationToken | None:
        return self._staged.added.get(token_id) or self._store.registration_tokens.get(token_id)

    def _edited(self, token_id: str) -> RegistrationToken | None:
        """The token as committed (or added here) with this unit of work's edits."""
        base = self._base(token_id)
        if base is None:
            return None
        token = dataclasses.replace(base)
        if token_id in self._staged.edits:
            token.description, token.revoked_at = self._staged.edits[token_id]
        return token

    def _current(self, token_id: str) -> RegistrationToken | None:
        """What this unit of work sees: committed, plus its own edits and uses."""
        token = self._edited(token_id)
        if token is None:
            return None
        for now in self._staged.uses.get(token_id, ()):
            token.uses += 1
            token.last_used_at = now
        return token

    def _ids(self) -> set[str]:
        return set(self._store.registration_tokens) | set(self._staged.added)

    async def add(self, token: RegistrationToken) -> None:
        for token_id in self._ids():
            other = self._base(token_id)
            if token_id == token.id or (other is not None and other.token_hash == token.token_hash):
                raise Conflict(f"agent registration token {token.id} or its hash exists already")
        self._staged.added[token.id] = dataclasses.replace(token)

    async def get(self, token_id: str) -> RegistrationToken:
        token = self._current(token_id)
        if token is None:
            raise NotFound(f"no agent registration token {token_id}")
        return token

    async def save(self, token: RegistrationToken) -> None:
        if self._base(token.id) is None:
            raise NotFound(f"no agent registration token {token.id}")
        self._staged.edits[token.id] = (token.description, token.revoked_at)

    async def spend(self, token_hash: str, now: datetime) -> RegistrationToken:
        for token_id in self._ids():
            token = self._current(token_id)
            if token is not None and token.token_hash == token_hash:
                token.use(now)  # raises InvalidCredentials with the reason
                self._staged.uses.setdefault(token_id, []).append(now)
                return token
        raise NotFound("no agent registration token has this hash")

    def check(self) -> None:
        """Before commit: the adds are still unique and the uses still allowed."""
        committed = self._store.registration_tokens
        hashes = {token.token_hash for token in committed.values()}
        for token in self._staged.added.values():
            if token.id in committed or token.token_hash in hashes:
                raise Conflict(f"agent registration token {token.id} or its hash exists already")
        for token_id, uses in self._staged.uses.items():
            stored = committed.get(token_id)
            if stored is None:
                continue  # added in this unit of work: checked when spent
            try:
                _with_uses(stored, uses)
            except InvalidCredentials as exc:
                raise StaleState(f"agent registration token {token_id}: {exc.message}") from exc

    def apply(self) -> None:
        """On commit, after ``check`` (no await in between): make the changes visible.

        Uses are added to the committed count (not written over it), like ``uses + 1``.
        """
        committed = self._store.registration_tokens
        for token_id in self._staged.added.keys() | self._staged.edits.keys():
            edited = self._edited(token_id)
            assert edited is not None
            committed[token_id] = edited
        for token_id, uses in self._staged.uses.items():
            token = dataclasses.replace(committed[token_id])
            token.uses += len(uses)
            token.last_used_at = max(uses)
            committed[token_id] = token
