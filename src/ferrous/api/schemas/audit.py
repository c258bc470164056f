"""The audit log's entries as the API shows them."""

from __future__ import annotations

from pydantic import BaseModel, Field

from ferrous.api.schemas.common import ApiModel, UtcDatetime


class AuditEntryOut(ApiModel):
    id: str
    at: UtcDatetime
    actor_kind: str | None = Field(
        description="user, service, agent or webhook; null with no name: anonymous."
    )
    actor_id: str | None
    actor_name: str | None = Field(
        description="Username, token or agent name; a failed login's attempted username."
    )
    role: str | None
    action: str = Field(examples=["POST /api/v1/projects/{project}/pipelines"])
    target: dict[str, str] = Field(
        description="The route's path parameters.", examples=[{"project": "demo"}]
    )
    source_ip: str | None
    result: int = Field(description="The HTTP status answered.", examples=[201])
    request_id: str | None


class AuditPage(BaseModel):
    items: list[AuditEntryOut]
    next_cursor: str | None = Field(
        description="Pass as `cursor` to get the next (older) page; null on the last page."
    )
