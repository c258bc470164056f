"""In-memory users and sign-in sessions, with the SQL adapters' semantics.

Both are saved with a compare-and-set on ``version`` (``VersionedRecords``). The admins read
with ``active_admins(lock=True)`` are checked again at commit: if one of them was changed by
a unit of work that committed first, this one gets ``StaleState`` and runs again, where
PostgreSQL would have made it wait for the row lock and then read the new state.
"""

from __future__ import annotations

from datetime import datetime

from ferrous.application.ports import StaleState
from ferrous.domain.errors import NotFound
from ferrous.domain.session import Session
from ferrous.domain.user import User
from ferrous.infrastructure.memory.store import InMemoryStore
from ferrous.infrastructure.memory.versioned_records import VersionedRecords


class InMemoryUserRepository:
    def __init__(self, store: InMemoryStore) -> None:
        self._store = store
        self._records = VersionedRecords(store.users, "user", unique=[lambda u: u.username])
        self._locked: dict[str, int] = {}  # admins read under lock -> their committed version

    async def add(self, user: User) -> None:
        self._records.add(user)

    async def get(self, user_id: str) -> User:
        user = self._records.get(user_id)
        if user is None:
            raise NotFound(f"no user {user_id}")
        return user

    async def get_by_username(self, username: str) -> User:
        for user in self._records.all():
            if user.username == username:
                return user
        raise NotFound(f"no user named {username!r}")

    async def save(self, user: User) -> None:
        self._records.save(user)

    async def active_admins(self, *, lock: bool = False) -> list[str]:
        admins = sorted(user.id for user in self._records.all() if user.is_active_admin)
        if lock:
            for user_id in admins:
                committed = self._store.users.get(user_id)
                if committed is not None:
                    self._locked.setdefault(user_id, committed.version)
        return admins

    async def has_any(self) -> bool:
        return bool(self._records.all())

    def check(self) -> None:
        self._records.check()
        for user_id, version in self._locked.items():
            if self._store.users[user_id].version != version:
                raise StaleState(f"admin {user_id} was changed by someone else")

    def apply(self) -> None:
        self._records.apply()


class InMemorySessionRepository:
    def __init__(self, store: InMemoryStore) -> None:
        self._records = VersionedRecords(
            store.sessions, "session", unique=[lambda s: s.refresh_hash]
        )

    async def add(self, session: Session) -> None:
        self._records.add(session)

    async def get(self, session_id: str) -> Session:
        session = self._records.get(session_id)
        if session is None:
            raise NotFound(f"no session {session_id}")
        return session

    async def save(self, session: Session) -> None:
        self._records.save(session)

    async def revoke_all(self, user_id: str, now: datetime) -> list[str]:
        revoked = []
        for session in self._records.all():
            if session.user_id == user_id and session.revoked_at is None:
                session.revoke(now)
                self._records.save(session)
                revoked.append(session.id)
        return sorted(revoked)

    def check(self) -> None:
        self._records.check()

    def apply(self) -> None:
        self._records.apply()
