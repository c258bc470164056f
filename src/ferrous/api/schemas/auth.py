"""Signing in, refreshing, and who the caller is."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from ferrous.application.use_cases.manage_users import MAX_PASSWORD


class LoginBody(BaseModel):
    username: str = Field(min_length=1, max_length=64, examples=["admin"])
    password: str = Field(min_length=1, max_length=MAX_PASSWORD)


class RefreshBody(BaseModel):
    refresh_token: str = Field(
        min_length=1, max_length=200, description="The latest `frf_...` token of the session."
    )


class TokenPair(BaseModel):
    access_token: str = Field(
        description="A JWT for `Authorization: Bearer`; it lasts `expires_in` seconds."
    )
    refresh_token: str = Field(
        description="Trade it once at `POST /api/v1/auth/refresh` for a new pair; using it "
        "a second time ends the session."
    )
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="Seconds the access token lasts.")


class Me(BaseModel):
    kind: str = Field(description="`user` (a person) or `service` (a service token).")
    id: str = Field(description="The user's id, or the service token's.")
    name: str = Field(description="The username, or the service token's name.")
    role: str
    scopes: list[str] = Field(description="A service token's scopes (empty for a person).")
    permissions: list[str] = Field(description="Every permission the caller holds now.")
