"""People who sign in: a username, a role, and whether they may still sign in.

A user is never deleted: deactivating keeps the name (audit entries and tokens point at it)
and stops every way in at once (password, sessions, personal API tokens). The domain keeps
the password's hash only, made by the ``PasswordHasher`` port; what makes a password good
enough is the application's rule. Changes are saved with optimistic concurrency on
``version``, so two admins editing one user cannot silently undo each other.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from ferrous.domain.access import Role
from ferrous.domain.errors import InvalidValue
from ferrous.domain.ids import new_id

USERNAME = re.compile(r"[a-z0-9._-]{1,64}")
MAX_EMAIL = 254
#: what a person may be; ``service`` is a token's role, never a person's
PERSON_ROLES = frozenset({Role.ADMIN, Role.DEVELOPER, Role.VIEWER})


def normalized_username(username: str) -> str:
    """The form usernames are stored and looked up in: stripped and lowercase."""
    return username.strip().lower()


def checked_username(username: str) -> str:
    name = normalized_username(username)
    if not USERNAME.fullmatch(name):
        raise InvalidValue(
            f"a username is 1 to 64 of a-z, 0-9, '.', '_' and '-', not {username[:80]!r}"
        )
    return name


def checked_email(email: str | None) -> str | None:
    """None for no address; a light check only (the mail server is the real judge)."""
    if email is None or not email.strip():
        return None
    email = email.strip()
    local, at, domain = email.rpartition("@")
    if not at or not local or "." not in domain or len(email) > MAX_EMAIL:
        raise InvalidValue(f"{email[:80]!r} is not an email address")
    if any(char.isspace() for char in email):
        raise InvalidValue("an email address has no spaces")
    return email


def checked_role(role: Role | str) -> Role:
    for person_role in PERSON_ROLES:
        if role == person_role:
            return person_role
    allowed = ", ".join(sorted(r.value for r in PERSON_ROLES))
    raise InvalidValue(f"a person's role is one of {allowed}, not {str(role)!r}")


@dataclass(slots=True, kw_only=True)
class User:
    id: str
    username: str
    email: str | None
    role: Role
    active: bool
    password_hash: str | None  # None: signing in with a password is not possible
    created_at: datetime
    updated_at: datetime
    version: int = 0

    @classmethod
    def create(
        cls,
        *,
        username: str,
        role: Role | str,
        now: datetime,
        password_hash: str | None = None,
        email: str | None = None,
    ) -> User:
        return cls(
            id=new_id(),
            username=checked_username(username),
            email=checked_email(email),
            role=checked_role(role),
            active=True,
            password_hash=password_hash,
            created_at=now,
            updated_at=now,
        )

    @property
    def is_active_admin(self) -> bool:
        return self.active and self.role == Role.ADMIN

    def change_role(self, role: Role | str, now: datetime) -> None:
        self.role = checked_role(role)
        self.updated_at = now

    def change_email(self, email: str | None, now: datetime) -> None:
        self.email = checked_email(email)
        self.updated_at = now

    def deactivate(self, now: datetime) -> None:
        """Every way in stops: password, sessions and personal API tokens."""
        self.active = False
        self.updated_at = now

    def activate(self, now: datetime) -> None:
        self.active = True
        self.updated_at = now

    def set_password_hash(self, password_hash: str, now: datetime) -> None:
        self.password_hash = password_hash
        self.updated_at = now
