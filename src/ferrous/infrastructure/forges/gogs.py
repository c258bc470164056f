"""Gogs webhooks: Gitea's payloads (Gitea is a Gogs fork) under ``X-Gogs-*`` headers.

Gogs signs with ``X-Gogs-Signature`` (bare hex HMAC-SHA256), names the event in
``X-Gogs-Event`` and the delivery in ``X-Gogs-Delivery``. Its pull request payload has branch
names but no commit SHAs, so a Gogs merge request event's ``source_sha`` is empty and the
caller resolves ``refs/pull/<n>/head`` with git. Gogs has no ping: its "Test delivery" is a
push of the latest commit, which builds like any push.
"""

from __future__ import annotations

from typing import Final

from ferrous.infrastructure.forges.gitea import GiteaFlavour, GiteaWebhooks

GOGS: Final = GiteaFlavour(
    provider="gogs",
    signature_headers=("X-Gogs-Signature",),
    event_headers=("X-Gogs-Event",),
    delivery_headers=("X-Gogs-Delivery",),
)


class GogsWebhooks(GiteaWebhooks):
    """The ``WebhookParser`` for Gogs."""

    def __init__(self) -> None:
        super().__init__(GOGS)
