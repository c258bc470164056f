"""Opaque page cursors for keyset pagination on (created_at, id)."""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime

from ferrous.domain.errors import NotFound


def encode_cursor(created_at: datetime, item_id: str) -> str:
    raw = f"{created_at.astimezone(UTC).isoformat()}|{item_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """Raises NotFound for a cursor this module did not make (the page does not exist)."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, item_id = raw.split("|", 1)
        created_at = datetime.fromisoformat(stamp)
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise NotFound(f"invalid page cursor {cursor!r}") from exc
    if created_at.tzinfo is None:
        raise NotFound(f"invalid page cursor {cursor!r}")
    return created_at, item_id
