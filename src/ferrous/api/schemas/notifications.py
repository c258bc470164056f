"""Notification rules and their delivery logs, as a project's maintainers manage them."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field

from ferrous.api.schemas.common import ApiModel, UtcDatetime
from ferrous.domain.notification import NotificationRule, NotifyChannel

Channel = Literal["webhook", "slack", "email"]
On = Literal["failure", "recovery", "success", "always"]

_ON = Field(
    description="`failure`: the build failed; `recovery`: it succeeded after the previous "
    "finished build of the same pipeline and ref failed; `success`; `always`: any final "
    "status, canceled included."
)
_BRANCHES = Field(
    description="Glob patterns of refs (`main`, `release/*`); empty: every ref.", max_length=50
)
_SECRET = Field(
    default=None,
    description="Webhooks only: signs each body (`X-Ferrous-Signature-256: sha256=<HMAC>`). "
    "Write-only.",
    min_length=16,
    max_length=1000,
)


def _default_on() -> list[On]:
    return ["failure", "recovery"]


class NotificationRuleCreate(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    channel: Channel
    target: str = Field(
        min_length=1,
        max_length=2000,
        description="The URL (webhook, slack), or comma-separated addresses (email).",
    )
    on: list[On] = Field(default_factory=_default_on, min_length=1)
    branches: list[str] = Field(default_factory=list, max_length=50)
    enabled: bool = True
    secret: str | None = _SECRET


class NotificationRuleUpdate(BaseModel):
    """Give what changes; `secret: ""` removes the secret."""

    name: str | None = Field(default=None, min_length=1, max_length=100)
    target: str | None = Field(default=None, min_length=1, max_length=2000)
    on: list[On] | None = Field(default=None, min_length=1)
    branches: list[str] | None = Field(default=None, max_length=50)
    enabled: bool | None = None
    secret: str | None = Field(default=None, max_length=1000)


class NotificationRuleOut(ApiModel):
    id: str
    project_id: str
    name: str
    channel: Channel
    target: str = Field(
        description="A Slack webhook URL is a credential: only its scheme and host are shown."
    )
    on: list[On] = _ON
    branches: list[str] = _BRANCHES
    enabled: bool
    has_secret: bool
    created_at: UtcDatetime


class NotificationRuleList(BaseModel):
    items: list[NotificationRuleOut]


class NotificationDeliveryOut(ApiModel):
    id: str = Field(description="The delivery id, as the receiver sees it (`X-Ferrous-Delivery`).")
    rule_id: str
    build_id: str | None = Field(description="None: a test delivery.")
    event: str
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    next_attempt_at: UtcDatetime | None
    last_error: str | None
    response_status: int | None = Field(description="The HTTP status, or the SMTP reply code.")
    created_at: UtcDatetime
    delivered_at: UtcDatetime | None


class NotificationDeliveryList(BaseModel):
    items: list[NotificationDeliveryOut]


def shown_target(rule: NotificationRule) -> str:
    if rule.channel is NotifyChannel.SLACK:
        parts = urlsplit(rule.target)
        return f"{parts.scheme}://{parts.netloc}/…"
    return rule.target


def rule_out(rule: NotificationRule) -> NotificationRuleOut:
    return NotificationRuleOut(
        id=rule.id,
        project_id=rule.project_id,
        name=rule.name,
        channel=rule.channel.value,
        target=shown_target(rule),
        on=sorted(o.value for o in rule.on),
        branches=list(rule.branches),
        enabled=rule.enabled,
        has_secret=rule.secret is not None,
        created_at=rule.created_at,
    )
