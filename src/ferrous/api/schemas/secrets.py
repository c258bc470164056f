"""Secret variables as the API takes and shows them: the value goes in, and never comes out."""

from __future__ import annotations

from pydantic import BaseModel, Field

from ferrous.api.schemas.common import ApiModel, UtcDatetime
from ferrous.domain.secret_variable import MAX_VALUE_BYTES, MIN_MASKED


class SecretVariableIn(BaseModel):
    value: str = Field(
        description=f"The value, at most {MAX_VALUE_BYTES} bytes; stored encrypted and never "
        "shown again.",
        json_schema_extra={"writeOnly": True},
    )
    protected: bool = Field(
        False,
        description="Only jobs of protected refs get it: tags, and the default branch.",
    )
    masked: bool = Field(
        True,
        description=f"Replaced by `[MASKED]` in job logs; the value must then be one line of "
        f"at least {MIN_MASKED} characters.",
    )


class SecretVariableOut(ApiModel):
    """A secret variable without its value."""

    id: str
    project_id: str | None = Field(description="null for an instance variable.")
    name: str
    protected: bool
    masked: bool
    created_at: UtcDatetime
    updated_at: UtcDatetime
    created_by: str | None


class SecretVariableList(BaseModel):
    items: list[SecretVariableOut]
