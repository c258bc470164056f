"""In-memory secret variables, with the SQL adapter's semantics.

A unit of work stages its adds, saves and removals; reads see the committed variables with
them. ``check`` runs again at commit what the database's unique constraint would: of two
units of work adding the same (owner, name), the second to commit gets ``Conflict``.
"""

from __future__ import annotations

import dataclasses

from ferrous.domain.errors import Conflict, NotFound
from ferrous.domain.secret_variable import SecretVariable
from ferrous.infrastructure.memory.store import InMemoryStore


class InMemorySecretVariableRepository:
    def __init__(self, store: InMemoryStore) -> None:
        self._store = store
        self._changed: dict[str, SecretVariable] = {}  # added or saved here, by id
        self._added: set[str] = set()
        self._removed: set[str] = set()

    def _visible(self) -> dict[str, SecretVariable]:
        merged = {**self._store.secret_variables, **self._changed}
        return {key: secret for key, secret in merged.items() if key not in self._removed}

    async def find(self, project_id: str | None, name: str) -> SecretVariable | None:
        for secret in self._visible().values():
            if (secret.project_id, secret.name) == (project_id, name):
                return dataclasses.replace(secret)
        return None

    async def list_for(self, project_id: str | None) -> list[SecretVariable]:
        found = [s for s in self._visible().values() if s.project_id == project_id]
        return [dataclasses.replace(s) for s in sorted(found, key=lambda s: s.name)]

    async def add(self, secret: SecretVariable) -> None:
        if await self.find(secret.project_id, secret.name) is not None:
            raise Conflict(f"a secret variable named {secret.name} exists already")
        self._changed[secret.id] = dataclasses.replace(secret)
        self._added.add(secret.id)

    async def save(self, secret: SecretVariable) -> None:
        if secret.id not in self._visible():
            raise NotFound(f"no secret variable {secret.name}")
        self._changed[secret.id] = dataclasses.replace(secret)

    async def remove(self, secret: SecretVariable) -> None:
        if secret.id not in self._visible():
            raise NotFound(f"no secret variable {secret.name}")
        self._changed.pop(secret.id, None)
        self._removed.add(secret.id)

    def check(self) -> None:
        """Before commit: the names added here are still free, what is saved still there."""
        committed = self._store.secret_variables
        taken = {(s.project_id, s.name) for key, s in committed.items() if key not in self._removed}
        for key, secret in self._changed.items():
            if key in self._added:
                if (secret.project_id, secret.name) in taken:
                    raise Conflict(f"a secret variable named {secret.name} exists already")
            elif key not in committed:
                raise NotFound(f"no secret variable {secret.name}")

    def apply(self) -> None:
        """On commit, after ``check`` (no await in between): make the changes visible."""
        committed = self._store.secret_variables
        for key in self._removed:
            committed.pop(key, None)
        committed.update(self._changed)
