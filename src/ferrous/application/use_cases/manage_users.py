"""Admins add people and change them: role, email, password, active or not.

There is always at least one active admin: demoting or deactivating the last one is a
``Conflict``, checked with the admins locked (``UserRepository.active_admins``), so two
admins demoting each other at once cannot both succeed. A new password, and deactivation,
end the person's sessions: whoever signed in with the old password, or before the account
was closed, must sign in again (reactivating an account does not bring old sessions back).
"""

from __future__ import annotations

import secrets

from ferrous.application.commands import CreateUser, UpdateUser
from ferrous.application.dependencies import Dependencies
from ferrous.application.ports import UnitOfWork
from ferrous.application.use_cases.sign_in import password_hasher
from ferrous.domain.errors import Conflict, InvalidValue, NotFound
from ferrous.domain.schedule import KEEP
from ferrous.domain.user import User

MIN_PASSWORD = 8
#: hashing cost grows with the length; nobody types more
MAX_PASSWORD = 1024


def checked_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise InvalidValue(f"a password has at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise InvalidValue(f"a password has at most {MAX_PASSWORD} characters")
    return password


def generated_password() -> str:
    """24 characters of 144 random bits: shown once, to be changed or kept in a vault."""
    return secrets.token_urlsafe(18)


async def create_user(
    cmd: CreateUser, uow: UnitOfWork, deps: Dependencies
) -> tuple[User, str | None]:
    """The new user and the password generated for it (None when one was given)."""
    hasher = password_hasher(deps)
    now = deps.clock.now()
    user = User.create(username=cmd.username, role=cmd.role, email=cmd.email, now=now)
    generated: str | None = None
    if cmd.password is None:
        password = generated = generated_password()
    else:
        password = checked_password(cmd.password)
    try:
        await uow.users.get_by_username(user.username)
    except NotFound:
        pass
    else:
        raise Conflict(f"a user named {user.username!r} exists already")
    user.set_password_hash(await hasher.hash(password), now)
    await uow.users.add(user)  # a racing twin of the same name gets Conflict here
    await uow.commit()
    return user, generated


async def update_user(cmd: UpdateUser, uow: UnitOfWork, deps: Dependencies) -> User:
    user = await uow.users.get(cmd.user_id)
    now = deps.clock.now()
    was_admin = user.is_active_admin
    end_sessions = False
    if cmd.role is not KEEP:
        user.change_role(cmd.role, now)
    if cmd.email is not KEEP:
        user.change_email(cmd.email, now)
    if cmd.active is not KEEP and cmd.active != user.active:
        if cmd.active:
            user.activate(now)
        else:
            user.deactivate(now)
            end_sessions = True
    if cmd.password is not KEEP:
        hashed = await password_hasher(deps).hash(checked_password(cmd.password))
        user.set_password_hash(hashed, now)
        end_sessions = True
    if was_admin and not user.is_active_admin:
        others = set(await uow.users.active_admins(lock=True)) - {user.id}
        if not others:
            raise Conflict(f"{user.username} is the last active admin: make another admin first")
    await uow.users.save(user)
    if end_sessions:
        await uow.sessions.revoke_all(user.id, now)
    await uow.commit()
    return user
