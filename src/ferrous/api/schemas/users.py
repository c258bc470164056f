"""People, as admins list, create and change them (never their password hashes)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from ferrous.api.schemas.common import ApiModel, UtcDatetime
from ferrous.application.use_cases.manage_users import MAX_PASSWORD, MIN_PASSWORD
from ferrous.domain.user import MAX_EMAIL

PersonRole = Literal["admin", "developer", "viewer"]


class UserCreate(BaseModel):
    username: str = Field(
        min_length=1,
        max_length=64,
        description="1 to 64 of a-z, 0-9, `.`, `_`, `-` (stored lowercase).",
        examples=["ada"],
    )
    role: PersonRole = "viewer"
    email: str | None = Field(None, max_length=MAX_EMAIL)
    password: str | None = Field(
        None,
        min_length=MIN_PASSWORD,
        max_length=MAX_PASSWORD,
        description="Omitted: one is generated and returned once, in this answer.",
    )


class UserUpdate(BaseModel):
    """Only the fields sent change; `email: null` removes the address."""

    role: PersonRole | None = None
    email: str | None = Field(None, max_length=MAX_EMAIL)
    active: bool | None = Field(
        None, description="false: every way in stops (password, sessions, personal tokens)."
    )
    password: str | None = Field(
        None,
        min_length=MIN_PASSWORD,
        max_length=MAX_PASSWORD,
        description="A new password ends the person's sessions.",
    )


class UserOut(ApiModel):
    id: str
    username: str
    email: str | None
    role: str
    active: bool
    created_at: UtcDatetime
    updated_at: UtcDatetime


class UserCreated(UserOut):
    password: str | None = Field(
        description="The generated password, shown once (null when one was given)."
    )


class UserList(BaseModel):
    items: list[UserOut]
