"""Pipeline trigger tokens, as a project's maintainers create and list them, and the call
an external system makes with one."""

from __future__ import annotations

from pydantic import BaseModel, Field

from ferrous.api.schemas.agent_registration_tokens import TokenCreate
from ferrous.api.schemas.builds import BuildTrigger
from ferrous.api.schemas.common import ApiModel, UtcDatetime
from ferrous.domain.registration_token import TokenState


class TriggerTokenCreate(TokenCreate):
    pass


class TriggerTokenOut(ApiModel):
    id: str
    project_id: str
    description: str
    status: TokenState = Field(description="`active` tokens start builds; the rest do not.")
    created_at: UtcDatetime
    last_used_at: UtcDatetime | None
    revoked_at: UtcDatetime | None
    expires_at: UtcDatetime | None


class TriggerTokenCreated(TriggerTokenOut):
    token: str = Field(
        description="Shown once, never again: give it to the system that starts builds (it "
        "is stored hashed)."
    )


class TriggerTokenList(BaseModel):
    items: list[TriggerTokenOut]


class PipelineTrigger(BuildTrigger):
    """GitLab's ``POST /projects/:id/trigger/pipeline`` parameters: a manual run's, with the
    token (in a form, variables are ``variables[KEY]=value``)."""

    token: str = Field(min_length=1, max_length=200, description="A trigger token (`ftt_...`).")
