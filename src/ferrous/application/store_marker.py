"""The object store's marker: which installation sweeps it, and when it last did.

The orphan sweep deletes every old object of our shapes that no row of *this* database
names. Two installations that share a store by mistake (dev and prod on one bucket and
prefix) would each delete the other's objects. So an installation (its database's
``installation`` row) claims the store with a small JSON object at the store's root,
``ferrous-installation.json``, and sweeps only a store that it alone has claimed:

- no marker: it writes its own; the first sweep comes one interval later, which gives
  another installation sharing the store time to find the marker and say so;
- its own marker: it sweeps when the interval since the last sweep (or since the claim) is
  over, and writes the new time first (a restart or a new cleanup leader does not sweep
  again, and a failed sweep waits an interval too);
- another installation's marker: it sweeps and discards nothing, and adds its id to the
  marker's ``others``, so that the owner stops too: an owner whose marker names others does
  not sweep either. Both log a warning every pass until each installation has a store of its
  own and the marker is deleted (the next pass writes a fresh one).

A copy of the database (a staging server made from a backup) keeps the installation's id,
so it cannot be told apart from the original: a copy needs its own store.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

from ferrous.application.storage_ports import ObjectStore
from ferrous.domain.errors import InvalidValue, NotFound

MARKER_KEY = "ferrous-installation.json"
MAX_MARKER_BYTES = 64 * 1024  # a marker is a few hundred bytes; anything bigger is not ours


@dataclass(frozen=True, slots=True, kw_only=True)
class StoreMarker:
    installation_id: str  # the installation that claimed the store
    claimed_at: datetime
    last_sweep: datetime | None = None  # None: not swept yet
    #: installations that found the store claimed by another: nobody sweeps then
    others: tuple[str, ...] = ()

    def shared_with(self, installation_id: str) -> tuple[str, ...]:
        """The other installations that use this store, as seen by ``installation_id``."""
        ids = {self.installation_id, *self.others}
        ids.discard(installation_id)
        return tuple(sorted(ids))

    def to_json(self) -> bytes:
        document = {
            "installation_id": self.installation_id,
            "claimed_at": self.claimed_at.isoformat(),
            "last_sweep": None if self.last_sweep is None else self.last_sweep.isoformat(),
            "others": list(self.others),
        }
        return json.dumps(document, indent=2).encode() + b"\n"

    @classmethod
    def from_json(cls, data: bytes) -> StoreMarker:
        """``InvalidValue`` when ``data`` is not a marker (another program's object, a
        hand edit gone wrong)."""
        try:
            document = json.loads(data)
            installation_id = document["installation_id"]
            others = document.get("others") or []
            last_sweep = document.get("last_sweep")
            if not isinstance(installation_id, str) or not installation_id:
                raise ValueError("no installation_id")
            if not isinstance(others, list) or not all(isinstance(o, str) for o in others):
                raise ValueError("others is not a list of ids")
            return cls(
                installation_id=installation_id,
                claimed_at=_aware(document["claimed_at"]),
                last_sweep=None if last_sweep is None else _aware(last_sweep),
                others=tuple(others),
            )
        except (ValueError, TypeError, KeyError) as exc:
            raise InvalidValue(f"the object store's {MARKER_KEY} is not a marker: {exc}") from exc


async def read_marker(objects: ObjectStore) -> StoreMarker | None:
    """The store's marker; None when there is none. ``InvalidValue`` when the object is not
    a marker, ``StorageError`` when the store does not answer."""
    stored = await objects.stat(MARKER_KEY)
    if stored is None:
        return None
    if stored.size > MAX_MARKER_BYTES:
        raise InvalidValue(f"the object store's {MARKER_KEY} is not a marker: too large")
    try:
        chunks = await objects.read(MARKER_KEY)
    except NotFound:  # deleted since the stat
        return None
    return StoreMarker.from_json(b"".join([chunk async for chunk in chunks]))


async def write_marker(objects: ObjectStore, marker: StoreMarker) -> None:
    async def body() -> AsyncIterator[bytes]:
        yield marker.to_json()

    await objects.put(MARKER_KEY, body(), max_bytes=MAX_MARKER_BYTES)


def _aware(value: object) -> datetime:
    if not isinstance(value, str):
        raise ValueError(f"not a time: {value!r}")
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError(f"a time without its zone: {value!r}")
    return moment
