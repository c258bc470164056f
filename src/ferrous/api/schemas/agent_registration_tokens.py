"""Agent registration tokens, as an admin creates and lists them."""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel, Field, field_validator, model_validator

from ferrous.api.schemas.common import ApiModel, UtcDatetime
from ferrous.domain.registration_token import MAX_DESCRIPTION, TokenState
from ferrous.pipeline_config.checks import parse_duration


class TokenCreate(BaseModel):
    """What every kind of issued token is created with: a note and an optional expiry."""

    description: str = Field("", max_length=MAX_DESCRIPTION, examples=["build farm, rack 3"])
    expires_in: str | int | None = Field(
        None,
        description="How long it stays usable: seconds, or a duration such as `7d`, `12h`, "
        "`1h 30m` (GitLab's forms). At most one of `expires_in` and `expires_at`; neither: "
        "it never expires.",
        examples=["7d"],
    )
    expires_at: UtcDatetime | None = Field(None, description="When it stops being usable.")

    @field_validator("expires_in")
    @classmethod
    def _a_duration(cls, value: str | int | None) -> str | int | None:
        if value is not None and not (parse_duration(str(value)) or 0) > 0:
            raise ValueError("must be a positive duration such as 7d, 12h, 30m or 3600")
        return value

    @model_validator(mode="after")
    def _one_expiry(self) -> TokenCreate:
        if self.expires_in is not None and self.expires_at is not None:
            raise ValueError("give expires_in or expires_at, not both")
        return self

    @property
    def expires_in_delta(self) -> timedelta | None:
        if self.expires_in is None:
            return None
        return timedelta(seconds=parse_duration(str(self.expires_in)) or 0)


class RegistrationTokenCreate(TokenCreate):
    max_uses: int | None = Field(
        None, ge=1, le=1_000_000, description="How many agents may register with it; null: any."
    )


class RegistrationTokenOut(ApiModel):
    id: str
    description: str
    status: TokenState = Field(description="`active` tokens register agents; the rest do not.")
    created_at: UtcDatetime
    expires_at: UtcDatetime | None
    revoked_at: UtcDatetime | None
    max_uses: int | None
    uses: int = Field(description="Agents registered with it so far.")
    last_used_at: UtcDatetime | None


class RegistrationTokenCreated(RegistrationTokenOut):
    token: str = Field(
        description="Shown once, never again: give it to `ferrous agent --token` (it is "
        "stored hashed)."
    )


class RegistrationTokenList(BaseModel):
    items: list[RegistrationTokenOut]
