"""People: admins list, add and change them (``users:admin``).

A new user without a password gets a generated one, in the creation's answer only
(``Cache-Control: no-store``). Users are deactivated, never deleted. Demoting or
deactivating the last active admin is refused (409).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from ferrous.api.caller import authenticator_of
from ferrous.api.permissions import require
from ferrous.api.schemas.common import problems
from ferrous.api.schemas.users import UserCreate, UserCreated, UserList, UserOut, UserUpdate
from ferrous.api.services import ApiServices
from ferrous.application.commands import CreateUser, UpdateUser
from ferrous.application.identity_queries import IdentityQueries, UserView
from ferrous.domain.errors import FerrousError


def identities_of(services: ApiServices) -> IdentityQueries:
    if services.identities is None:
        raise FerrousError("this server has no user accounts")
    return services.identities


def build_router(services: ApiServices) -> APIRouter:
    router = APIRouter(prefix="/users", tags=["users"], dependencies=[require("users:admin")])
    bus = services.bus

    @router.get("")
    async def list_users() -> UserList:
        """Every user, by username, deactivated ones too."""
        users = await identities_of(services).list_users()
        return UserList(items=[UserOut.model_validate(user) for user in users])

    @router.post("", status_code=201, responses=problems(409, 422))
    async def create_user(body: UserCreate, response: Response) -> UserCreated:
        """Add a person; without a password one is generated and shown in this answer only."""
        user, generated = await bus.handle(
            CreateUser(
                username=body.username, role=body.role, email=body.email, password=body.password
            )
        )
        response.headers["Location"] = f"/api/v1/users/{user.id}"
        response.headers["Cache-Control"] = "no-store"
        view = UserView.of(user)
        return UserCreated(**UserOut.model_validate(view).model_dump(), password=generated)

    @router.get("/{user_id}", responses=problems(404))
    async def get_user(user_id: str) -> UserOut:
        """One user, by id or username."""
        return UserOut.model_validate(await identities_of(services).get_user(user_id))

    @router.patch("/{user_id}", responses=problems(404, 409, 422))
    async def update_user(user_id: str, body: UserUpdate, request: Request) -> UserOut:
        """Change a user's role, email, password or whether they may sign in."""
        found = await identities_of(services).get_user(user_id)
        sent = body.model_fields_set
        changes: dict[str, Any] = {
            name: getattr(body, name)
            for name in ("role", "active", "password")
            if name in sent and getattr(body, name) is not None
        }
        if "email" in sent:
            changes["email"] = body.email
        user = await bus.handle(UpdateUser(user_id=found.id, **changes))
        authenticator_of(request).forget(user.id)  # a new role or state counts at once
        return UserOut.model_validate(UserView.of(user))

    return router
