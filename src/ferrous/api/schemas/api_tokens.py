"""API tokens, as people and admins create and list them (the secret only once)."""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel, Field, field_validator, model_validator

from ferrous.api.schemas.common import ApiModel, UtcDatetime
from ferrous.domain.api_token import MAX_NAME, ApiTokenKind
from ferrous.domain.registration_token import TokenState
from ferrous.pipeline_config.checks import parse_duration


class ApiTokenCreate(BaseModel):
    name: str = Field(min_length=1, max_length=MAX_NAME, examples=["laptop CLI"])
    kind: ApiTokenKind = Field(
        ApiTokenKind.PERSONAL,
        description="`personal`: acts as you, with your role. `service` (admins only): "
        "acts with `scopes` only, and keeps working whoever made it.",
    )
    scopes: list[str] = Field(
        default_factory=list,
        description="A service token's permissions, such as `builds:trigger` (see "
        "`x-permission` on each operation); none for a personal token.",
    )
    expires_in: str | int | None = Field(
        None,
        description="How long it stays usable: seconds, or a duration such as `30d`, `12h`. "
        "At most one of `expires_in` and `expires_at`; neither: it never expires.",
        examples=["30d"],
    )
    expires_at: UtcDatetime | None = Field(None, description="When it stops being usable.")

    @field_validator("expires_in")
    @classmethod
    def _a_duration(cls, value: str | int | None) -> str | int | None:
        if value is not None and not (parse_duration(str(value)) or 0) > 0:
            raise ValueError("must be a positive duration such as 30d, 12h, 30m or 3600")
        return value

    @model_validator(mode="after")
    def _one_expiry(self) -> ApiTokenCreate:
        if self.expires_in is not None and self.expires_at is not None:
            raise ValueError("give expires_in or expires_at, not both")
        return self

    @property
    def expires_in_delta(self) -> timedelta | None:
        if self.expires_in is None:
            return None
        return timedelta(seconds=parse_duration(str(self.expires_in)) or 0)


class ApiTokenOut(ApiModel):
    id: str
    user_id: str = Field(description="Its owner; for a service token, the admin who made it.")
    name: str
    kind: ApiTokenKind
    scopes: list[str]
    prefix: str = Field(description="The token's first characters, to tell tokens apart.")
    status: TokenState = Field(description="`active` tokens work; the rest do not.")
    created_at: UtcDatetime
    expires_at: UtcDatetime | None
    last_used_at: UtcDatetime | None = Field(description="Updated at most once a minute.")
    revoked_at: UtcDatetime | None


class ApiTokenCreated(ApiTokenOut):
    token: str = Field(
        description="Shown once, never again: use it as `Authorization: Bearer <token>` (it "
        "is stored hashed)."
    )


class ApiTokenList(BaseModel):
    items: list[ApiTokenOut]
