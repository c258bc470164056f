"""What became of one forge webhook delivery: the record that makes a redelivery harmless.

Forges redeliver (a timeout on their side, a person pressing "Redeliver"); each delivery
carries an id, and the record of the first one, unique per project, forge and id, answers
the repeats without creating a second build. Only deliveries that passed the signature check
are recorded: an unauthenticated caller cannot fill the table.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from ferrous.domain.ids import new_id


class DeliveryOutcome(StrEnum):
    BUILT = "built"  # one build or more were created
    PING = "ping"  # the forge checked that the hook works
    IGNORED = "ignored"  # nothing to build (a deleted branch, a closed merge request, ...)
    SKIPPED = "skipped"  # [skip ci] in the commit message, or no enabled pipeline


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryRecord:
    id: str
    project_id: str
    forge: str
    delivery_id: str
    event: str  # the forge's event name, as its header said
    received_at: datetime
    outcome: DeliveryOutcome
    message: str
    build_ids: tuple[str, ...] = ()

    @classmethod
    def create(
        cls,
        *,
        project_id: str,
        forge: str,
        delivery_id: str,
        event: str,
        received_at: datetime,
        outcome: DeliveryOutcome,
        message: str,
        build_ids: tuple[str, ...] = (),
    ) -> DeliveryRecord:
        return cls(
            id=new_id(),
            project_id=project_id,
            forge=forge,
            delivery_id=delivery_id,
            event=event,
            received_at=received_at,
            outcome=outcome,
            message=message,
            build_ids=build_ids,
        )
