"""Building deliveries for the forge tests: a payload, its event header, and a valid signature."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from ferrous.application.webhooks import WebhookDelivery, WebhookEvent
from ferrous.infrastructure.forges.registry import receive_webhook

SECRET = "s3cret"
SHA_A = "a" * 40
SHA_B = "b" * 40
SHA_C = "c" * 40
ZERO = "0" * 40

#: forge -> (event header, signature header, signature prefix or None for GitLab's token)
HEADERS: dict[str, tuple[str, str, str | None]] = {
    "github": ("X-GitHub-Event", "X-Hub-Signature-256", "sha256="),
    "gitlab": ("X-Gitlab-Event", "X-Gitlab-Token", None),
    "gitea": ("X-Gitea-Event", "X-Gitea-Signature", ""),
    "forgejo": ("X-Forgejo-Event", "X-Forgejo-Signature", ""),
    "gogs": ("X-Gogs-Event", "X-Gogs-Signature", ""),
    "bitbucket": ("X-Event-Key", "X-Hub-Signature", "sha256="),
}


def hex_hmac(body: bytes, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signed_headers(forge: str, event: str, body: bytes, secret: str = SECRET) -> dict[str, str]:
    event_header, signature_header, prefix = HEADERS[forge]
    signature = secret if prefix is None else prefix + hex_hmac(body, secret)
    return {
        event_header: event,
        signature_header: signature,
        "Content-Type": "application/json",
    }


def deliver(
    forge: str, event: str, payload: dict[str, Any] | bytes, **extra_headers: str
) -> WebhookDelivery:
    """A correctly signed delivery through the route's one call."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = signed_headers(forge, event, body) | extra_headers
    return receive_webhook(forge, headers, body, SECRET)


def one(forge: str, event: str, payload: dict[str, Any] | bytes) -> WebhookEvent:
    """The single event of a delivery."""
    delivery = deliver(forge, event, payload)
    assert len(delivery.events) == 1, delivery.events
    return delivery.events[0]
