"""Notification channels: outgoing webhooks, Slack-compatible incoming webhooks, email."""

from __future__ import annotations

from ferrous.application.notification_ports import NotificationChannel
from ferrous.domain.notification import NotifyChannel
from ferrous.infrastructure.notify.email import (
    SmtpConfig,
    SmtpEmailChannel,
    UnconfiguredEmailChannel,
)
from ferrous.infrastructure.notify.slack import SlackChannel
from ferrous.infrastructure.notify.webhook import WebhookChannel
from ferrous.infrastructure.settings import Settings


def email_channel_for(settings: Settings) -> NotificationChannel:
    """The SMTP relay of the ``smtp_*`` settings; without ``smtp_host`` email deliveries fail,
    saying so."""
    if not settings.smtp_host:
        return UnconfiguredEmailChannel()
    return SmtpEmailChannel(
        SmtpConfig(
            host=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_username,
            password=settings.smtp_password,
            starttls=settings.smtp_starttls,
            implicit_tls=settings.smtp_tls,
            verify_certificate=settings.smtp_verify_certificate,
            ca_file=settings.smtp_ca_file,
            sender=settings.smtp_from,
            timeout=settings.smtp_timeout,
        )
    )


def notification_channels(settings: Settings) -> dict[NotifyChannel, NotificationChannel]:
    return {
        NotifyChannel.WEBHOOK: WebhookChannel(),
        NotifyChannel.SLACK: SlackChannel(),
        NotifyChannel.EMAIL: email_channel_for(settings),
    }
