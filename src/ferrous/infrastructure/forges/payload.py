"""Reading a delivery body defensively: JSON (or a form's ``payload=``) into a typed accessor.

Bodies come from the network; a missing field or one of the wrong type must end as a
``WebhookPayloadInvalid`` that names the field (a 400 the forge's delivery log shows), never as
a ``KeyError`` or ``TypeError`` that becomes a 500. ``Payload`` wraps one JSON object and
knows its path, so messages say ``$.pull_request.head: expected an object``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

from ferrous.application.webhooks import WebhookPayloadInvalid

#: Event header values are short words: `push`, `Merge Request Hook`, `pullrequest:created`.
EVENT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9 _:.\-]{0,63}$")


def event_name(headers: Mapping[str, str], names: tuple[str, ...]) -> str:
    """The event header's value (first of ``names`` present); missing or garbled is invalid."""
    for name in names:
        value = headers.get(name.lower())
        if value is not None:
            value = value.strip()
            if not EVENT_NAME.match(value):
                raise WebhookPayloadInvalid(f"{name} {value[:64]!r} is not an event name")
            return value
    raise WebhookPayloadInvalid(f"missing event header {' or '.join(names)}")


def delivery_id(headers: Mapping[str, str], names: tuple[str, ...], body: bytes) -> str:
    """The forge's delivery id, else ``sha256:<hex>`` of the body (same body, same id)."""
    for name in names:
        value = headers.get(name.lower(), "").strip()
        if value:
            return value[:200]
    return "sha256:" + hashlib.sha256(body).hexdigest()


def decode_body(headers: Mapping[str, str], body: bytes) -> Payload:
    """The body's JSON object; a form-encoded body's ``payload`` field (a hook option of
    GitHub, Gitea and Gogs) is read the same way, since the signature covers the form."""
    content_type = headers.get("content-type", "").split(";")[0].strip().lower()
    raw: str | bytes = body
    if content_type == "application/x-www-form-urlencoded":
        try:
            fields = parse_qs(body.decode("utf-8"), strict_parsing=False)
        except (UnicodeDecodeError, ValueError) as exc:
            raise WebhookPayloadInvalid(f"form body is not readable: {exc}") from exc
        if "payload" not in fields:
            raise WebhookPayloadInvalid("form body has no 'payload' field")
        raw = fields["payload"][0]
    if not raw:
        raise WebhookPayloadInvalid("the body is empty")
    try:
        data = json.loads(raw)
    except RecursionError as exc:
        raise WebhookPayloadInvalid("the body's JSON is nested too deeply") from exc
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, huge integers
        raise WebhookPayloadInvalid(f"the body is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise WebhookPayloadInvalid(f"the body is JSON {type(data).__name__}, not an object")
    return Payload(data)


class Payload:
    """One JSON object and where it sits in the body, with getters that check types."""

    __slots__ = ("data", "path")

    def __init__(self, data: Mapping[str, Any], path: str = "$") -> None:
        self.data = data
        self.path = path

    def _where(self, key: str) -> str:
        return f"{self.path}.{key}"

    def _invalid(self, key: str, wanted: str) -> WebhookPayloadInvalid:
        found = type(self.data.get(key)).__name__
        return WebhookPayloadInvalid(f"{self._where(key)}: expected {wanted}, found {found}")

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def obj(self, key: str) -> Payload:
        """A required object."""
        found = self.opt_obj(key)
        if found is None:
            raise WebhookPayloadInvalid(f"{self._where(key)}: missing")
        return found

    def opt_obj(self, key: str) -> Payload | None:
        """An object, or None when absent or null."""
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise self._invalid(key, "an object")
        return Payload(value, self._where(key))

    def text(self, key: str, default: str = "") -> str:
        """A string, or ``default`` when absent or null."""
        value = self.data.get(key)
        if value is None:
            return default
        if not isinstance(value, str):
            raise self._invalid(key, "a string")
        return value

    def req_text(self, key: str) -> str:
        """A required, non-empty string."""
        value = self.text(key)
        if not value:
            raise WebhookPayloadInvalid(f"{self._where(key)}: missing")
        return value

    def number(self, key: str) -> int:
        """A required positive integer (or a string of digits, as some forges send ids)."""
        value = self.data.get(key)
        if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 19:
            value = int(value)
        if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**63:
            return value
        if value is None:
            raise WebhookPayloadInvalid(f"{self._where(key)}: missing")
        raise self._invalid(key, "a positive integer")

    def flag(self, key: str) -> bool:
        """A boolean; absent or null is False."""
        value = self.data.get(key)
        if value is None:
            return False
        if not isinstance(value, bool):
            raise self._invalid(key, "true or false")
        return value

    def objs(self, key: str) -> list[Payload]:
        """A list of objects; absent or null is empty."""
        value = self.data.get(key)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise self._invalid(key, "a list of objects")
        return [Payload(v, f"{self._where(key)}[{i}]") for i, v in enumerate(value)]

    def texts(self, key: str) -> tuple[str, ...] | None:
        """A list of strings; None when absent (the forge did not say)."""
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self._invalid(key, "a list of strings")
        return tuple(value)
