"""In-memory pipeline trigger tokens, with the SQL adapter's semantics.

A unit of work stages what it does to tokens: tokens added, maintainers' edits (``save``)
and uses (``use``), kept apart as the SQL adapter writes them with separate statements, so a
revocation never undoes a use stamped meanwhile. On commit each use is checked again against
the committed token: a trigger whose token was revoked by a unit of work that committed
first gets ``StaleState`` (the bus runs it again, and ``use`` then refuses with the reason),
where PostgreSQL would have made it wait and then refused.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime

from ferrous.application.ports import StaleState
from ferrous.domain.errors import Conflict, InvalidCredentials, NotFound
from ferrous.domain.trigger_token import TriggerToken
from ferrous.infrastructure.memory.store import InMemoryStore


@dataclass(eq=False)
class _Staged:
    added: dict[str, TriggerToken] = field(default_factory=dict)
    edits: dict[str, tuple[str, datetime | None]] = field(default_factory=dict)
    uses: dict[str, datetime] = field(default_factory=dict)  # the latest use


class InMemoryTriggerTokenRepository:
    def __init__(self, store: InMemoryStore) -> None:
        self._store = store
        self._staged = _Staged()

    def _current(self, token_id: str) -> TriggerToken | None:
        """What this unit of work sees: committed (or added here), with its edits and uses."""
        base = self._staged.added.get(token_id) or self._store.trigger_tokens.get(token_id)
        if base is None:
            return None
        token = dataclasses.replace(base)
        if token_id in self._staged.edits:
            token.description, token.revoked_at = self._staged.edits[token_id]
        token.last_used_at = self._staged.uses.get(token_id, token.last_used_at)
        return token

    def _all(self) -> list[TriggerToken]:
        ids = self._store.trigger_tokens.keys() | self._staged.added.keys()
        return [token for token_id in ids if (token := self._current(token_id)) is not None]

    async def add(self, token: TriggerToken) -> None:
        if any(
            other.id == token.id or other.token_hash == token.token_hash for other in self._all()
        ):
            raise Conflict(f"trigger token {token.id} or its hash exists already")
        self._staged.added[token.id] = dataclasses.replace(token)

    async def get(self, token_id: str) -> TriggerToken:
        token = self._current(token_id)
        if token is None:
            raise NotFound(f"no trigger token {token_id}")
        return token

    async def save(self, token: TriggerToken) -> None:
        if self._current(token.id) is None:
            raise NotFound(f"no trigger token {token.id}")
        self._staged.edits[token.id] = (token.description, token.revoked_at)

    async def use(self, token_hash: str, now: datetime) -> TriggerToken:
        for token in self._all():
            if token.token_hash == token_hash:
                token.use(now)  # raises InvalidCredentials with the reason
                self._staged.uses[token.id] = now
                return token
        raise NotFound("no trigger token has this hash")

    def check(self) -> None:
        """Before commit: the adds are still unique and the uses still allowed."""
        committed = self._store.trigger_tokens
        hashes = {token.token_hash for token in committed.values()}
        for token in self._staged.added.values():
            if token.id in committed or token.token_hash in hashes:
                raise Conflict(f"trigger token {token.id} or its hash exists already")
        for token_id, now in self._staged.uses.items():
            stored = committed.get(token_id)
            if stored is None:
                continue  # added in this unit of work: checked when used
            try:
                stored.check_usable(now)
            except InvalidCredentials as exc:
                raise StaleState(f"trigger token {token_id}: {exc.message}") from exc

    def apply(self) -> None:
        """On commit, after ``check`` (no await in between): make the changes visible."""
        committed = self._store.trigger_tokens
        for token_id in self._staged.added.keys() | self._staged.edits.keys():
            token = self._current(token_id)
            assert token is not None
            committed[token_id] = token
        for token_id, now in self._staged.uses.items():
            committed[token_id] = dataclasses.replace(committed[token_id], last_used_at=now)
