"""The first admin: made when a server starts on an installation that has no user yet.

Its password is ``FERROUS_ADMIN_PASSWORD`` when that is set, else generated and shown once
by the caller (``bootstrap`` prints it on stderr). Servers starting together all see an
empty table; the unique username lets exactly one of them create ``admin`` and the others
get ``Conflict``, which means someone else did it.
"""

from __future__ import annotations

from ferrous.application.commands import CreateUser
from ferrous.application.messagebus import MessageBus
from ferrous.domain.access import Role
from ferrous.domain.errors import Conflict
from ferrous.domain.user import User

FIRST_ADMIN = "admin"


async def create_first_admin(
    bus: MessageBus, password: str | None
) -> tuple[User, str | None] | None:
    """``(admin, generated password or None)`` if this call made it; None if users exist."""
    async with bus.uow_factory() as uow:
        if await uow.users.has_any():
            return None
    try:
        created: tuple[User, str | None] = await bus.handle(
            CreateUser(username=FIRST_ADMIN, role=Role.ADMIN, password=password)
        )
    except Conflict:
        return None  # another server made it at the same moment
    return created
