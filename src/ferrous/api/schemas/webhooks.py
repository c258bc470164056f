"""Webhook deliveries: the answer a forge gets, and the delivery log people read."""

from __future__ import annotations

from pydantic import Field

from ferrous.api.schemas.common import ApiModel, UtcDatetime


class DeliveryOut(ApiModel):
    id: str
    forge: str
    delivery_id: str = Field(description="The forge's id of the delivery (or the body's sha256).")
    event: str = Field(description="The forge's event name, from its header.")
    received_at: UtcDatetime
    outcome: str = Field(description="built, ping, ignored or skipped.")
    message: str = Field(description="Why: what was built, or why nothing was.")
    build_ids: list[str]


class WebhookAnswer(DeliveryOut):
    redelivery: bool = Field(
        description="True when this delivery id was received before: nothing new was created."
    )


class DeliveryList(ApiModel):
    items: list[DeliveryOut]
