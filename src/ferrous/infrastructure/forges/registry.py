"""Which parser answers ``/api/v1/hooks/{forge}/{project}``, and the one call the route makes.

The parsers hold no state, so one instance of each serves every request. ``forgejo`` and the
two Bitbucket flavours are aliases the URL may use; Bitbucket tells Cloud from Server by the
event key, so both share one parser.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from ferrous.application.webhooks import UnknownForge, WebhookDelivery, WebhookParser
from ferrous.infrastructure.forges.bitbucket import BitbucketWebhooks
from ferrous.infrastructure.forges.gitea import FORGEJO, GiteaWebhooks
from ferrous.infrastructure.forges.github import GitHubWebhooks
from ferrous.infrastructure.forges.gitlab import GitLabWebhooks
from ferrous.infrastructure.forges.gogs import GogsWebhooks

_BITBUCKET = BitbucketWebhooks()

PARSERS: Final[Mapping[str, WebhookParser]] = MappingProxyType(
    {
        "github": GitHubWebhooks(),
        "gitlab": GitLabWebhooks(),
        "gitea": GiteaWebhooks(),
        "forgejo": GiteaWebhooks(FORGEJO),
        "gogs": GogsWebhooks(),
        "bitbucket": _BITBUCKET,
        "bitbucket-cloud": _BITBUCKET,
        "bitbucket-server": _BITBUCKET,
    }
)


def webhook_parser(forge: str) -> WebhookParser:
    """Raises UnknownForge (a NotFound) for a name not in ``PARSERS``."""
    try:
        return PARSERS[forge]
    except KeyError:
        known = ", ".join(PARSERS)
        raise UnknownForge(f"unknown forge {forge[:40]!r}; one of {known}") from None


def receive_webhook(
    forge: str, headers: Mapping[str, str], body: bytes, secret: str | None
) -> WebhookDelivery:
    """Verify a delivery against the project's secret, then read it.

    Raises UnknownForge, WebhookSignatureInvalid (incl. WebhookSecretMissing) before anything
    of the body is parsed, or WebhookPayloadInvalid. Everything else is a WebhookDelivery,
    whose events say what to build and, for those of kind IGNORED, why nothing.
    """
    parser = webhook_parser(forge)
    parser.verify(headers, body, secret)
    return parser.parse(headers, body)
