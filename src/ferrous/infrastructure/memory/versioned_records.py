"""Records saved with a compare-and-set on ``version``, as one in-memory unit of work sees
them: the committed ones with its own adds and saves on top.

``save`` refuses a stale version at once, and ``check`` (at commit) again against what was
committed meanwhile, so of two units of work that saved the same record only the first to
commit succeeds, as with the SQL adapters' ``UPDATE ... WHERE version = :read``. Unique
keys besides the id (a username, a refresh token's hash) are checked the same two times.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from typing import Generic, Protocol, TypeVar

from ferrous.application.ports import StaleState
from ferrous.domain.errors import Conflict, NotFound


class Versioned(Protocol):
    id: str
    version: int


V = TypeVar("V", bound=Versioned)


class VersionedRecords(Generic[V]):
    def __init__(
        self,
        committed: dict[str, V],
        kind: str,
        unique: Iterable[Callable[[V], object]] = (),
    ) -> None:
        self._committed = committed
        self._kind = kind
        self._unique = tuple(unique)
        self._staged: dict[str, V] = {}
        self._base: dict[str, int | None] = {}  # the version each was read at (None: added)

    def get(self, record_id: str) -> V | None:
        found = self._staged.get(record_id) or self._committed.get(record_id)
        return None if found is None else copy.copy(found)

    def all(self) -> list[V]:
        ids = self._committed.keys() | self._staged.keys()
        return [record for record_id in ids if (record := self.get(record_id)) is not None]

    def add(self, record: V) -> None:
        if self.get(record.id) is not None or self._clash(record, self.all()):
            raise Conflict(f"{self._kind} {record.id} or one of its unique keys exists already")
        self._staged[record.id] = copy.copy(record)
        self._base[record.id] = None

    def save(self, record: V) -> None:
        current = self.get(record.id)
        if current is None:
            raise NotFound(f"no {self._kind} {record.id}")
        if current.version != record.version:
            raise StaleState(
                f"{self._kind} {record.id} is at version {current.version}, not {record.version}"
            )
        self._base.setdefault(record.id, record.version)
        record.version += 1
        self._staged[record.id] = copy.copy(record)

    def check(self) -> None:
        """Before commit: the adds are still new and unique, the saves not stale."""
        for record_id, base in self._base.items():
            committed = self._committed.get(record_id)
            if base is None and (
                committed is not None
                or self._clash(self._staged[record_id], self._committed.values())
            ):
                raise Conflict(f"{self._kind} {record_id} or one of its keys exists already")
            if base is not None and committed is not None and committed.version != base:
                raise StaleState(f"{self._kind} {record_id} was changed by someone else")

    def apply(self) -> None:
        """On commit, after ``check`` (no await in between)."""
        self._committed.update(self._staged)

    def _clash(self, record: V, others: Iterable[V]) -> bool:
        return any(
            other.id != record.id and key(other) == key(record)
            for other in others
            for key in self._unique
        )
