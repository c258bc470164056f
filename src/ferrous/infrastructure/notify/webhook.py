"""Outgoing webhooks: the notice as JSON, signed like GitHub signs its deliveries.

Headers: ``X-Ferrous-Event`` (``build.failed``, ``build.recovered``, ..., ``ping``),
``X-Ferrous-Delivery`` (the delivery id: the same on every attempt, so a receiver can drop a
resend) and, when the rule has a secret, ``X-Ferrous-Signature-256: sha256=<hex>``, the
HMAC-SHA256 of the raw body with the secret. A 2xx answer delivers; 408, 429, 5xx and
connection errors are tried again; any other answer is a refusal (failed at once).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import httpx

from ferrous import __version__
from ferrous.domain.notification import DueNotification, SendOutcome, SendResult

TIMEOUT = 10.0
ANSWER_MAX = 500  # characters of a refusing answer kept as the delivery's error
RETRYABLE = frozenset({408, 429})


def signature(secret: str, body: bytes) -> str:
    """The ``X-Ferrous-Signature-256`` value; receivers compare it in constant time."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def webhook_body(delivery: DueNotification) -> dict[str, Any]:
    return {
        "event": delivery.event,
        "delivery_id": delivery.delivery_id,
        **delivery.notice.to_json(),
    }


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers["Retry-After"])
    except (KeyError, ValueError):
        return None


async def post_json(
    client: httpx.AsyncClient, url: str, body: bytes, headers: dict[str, str]
) -> SendResult:
    """POST ``body``; what the answer means for the delivery (never raises for HTTP)."""
    try:
        response = await client.post(
            url, content=body, headers={"Content-Type": "application/json", **headers}
        )
    except httpx.HTTPError as exc:
        return SendResult(outcome=SendOutcome.RETRY, error=f"{type(exc).__name__}: {exc}")
    status = response.status_code
    if 200 <= status < 300:
        return SendResult(outcome=SendOutcome.DELIVERED, response_status=status)
    error = f"HTTP {status}: {response.text[:ANSWER_MAX]}".rstrip(": ")
    if status >= 500 or status in RETRYABLE:
        return SendResult(
            outcome=SendOutcome.RETRY,
            response_status=status,
            error=error,
            retry_after=_retry_after(response),
        )
    return SendResult(outcome=SendOutcome.REFUSED, response_status=status, error=error)


def new_client(timeout: float = TIMEOUT) -> httpx.AsyncClient:
    # redirects are not followed: a POST redirected elsewhere is the receiver's mistake
    return httpx.AsyncClient(timeout=timeout, headers={"User-Agent": f"ferrous-ci/{__version__}"})


class WebhookChannel:
    def __init__(self, timeout: float = TIMEOUT) -> None:
        self._client = new_client(timeout)

    async def send(self, delivery: DueNotification) -> SendResult:
        body = json.dumps(webhook_body(delivery), separators=(",", ":")).encode()
        headers = {
            "X-Ferrous-Event": delivery.event,
            "X-Ferrous-Delivery": delivery.delivery_id,
        }
        if delivery.secret:
            headers["X-Ferrous-Signature-256"] = signature(delivery.secret, body)
        return await post_json(self._client, delivery.target, body, headers)

    async def close(self) -> None:
        await self._client.aclose()
