"""Email notifications over SMTP, with the standard library's ``smtplib`` in worker threads.

One connection per message: CI notifications are few, and a fresh connection never trips on
a relay that dropped an idle one. What the relay answers decides the delivery's fate:

- accepted (for at least one recipient): delivered. Recipients refused one by one are named
  in the result's error, but the message is not sent again: the others already have it.
- a 4xx reply, no connection, a timeout, a dropped connection: try again later.
- a 5xx reply (550 no such user, 553 bad address, 535 bad credentials, 530 STARTTLS
  required): failed, with the relay's answer as the error.
- ``starttls`` wanted but not offered by the relay, AUTH not offered, or a certificate that
  does not verify: failed at once, saying why; credentials never cross in clear.

The password goes to ``smtplib.login`` only; it is in no log line, error or repr.
"""

from __future__ import annotations

import asyncio
import contextlib
import smtplib
import socket
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import getaddresses, parseaddr
from pathlib import Path

import structlog

from ferrous.domain.notification import DueNotification, SendOutcome, SendResult
from ferrous.infrastructure.notify.email_message import build_message

log = structlog.get_logger(__name__)

CONCURRENCY = 4  # connections to the relay at once
MAX_ERROR_TEXT = 300
NOT_CONFIGURED = "email is not configured on this server (set FERROUS_SMTP_HOST)"


@dataclass(frozen=True, slots=True, kw_only=True)
class SmtpConfig:
    """How to reach the relay; bootstrap makes it from the ``smtp_*`` settings."""

    host: str
    port: int = 587
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    starttls: bool = True  # require STARTTLS (ignored with implicit_tls)
    implicit_tls: bool = False  # TLS from the first byte (port 465)
    verify_certificate: bool = True
    ca_file: Path | None = None
    sender: str = "Ferrous CI <ferrous@localhost>"
    timeout: float = 10.0

    def tls_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(
            cafile=str(self.ca_file) if self.ca_file is not None else None
        )
        if not self.verify_certificate:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context


class _Unsent(Exception):
    """Why one attempt did not hand the message over."""

    def __init__(self, outcome: SendOutcome, error: str, code: int | None = None) -> None:
        super().__init__(error)
        self.outcome = outcome
        self.error = error
        self.code = code


def _reply(code: int, text: bytes | str) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return _clip(f"{code} {' '.join(text.split())}")


def _clip(text: str) -> str:
    return text if len(text) <= MAX_ERROR_TEXT else text[: MAX_ERROR_TEXT - 1] + "…"


def _by_code(code: int, error: str) -> _Unsent:
    outcome = SendOutcome.RETRY if 400 <= code < 500 else SendOutcome.REFUSED
    return _Unsent(outcome, error, code)


def _deliver(config: SmtpConfig, message: EmailMessage, recipients: list[str]) -> str | None:
    """Hand ``message`` to the relay (blocking); returns a note on refused recipients."""
    context = config.tls_context() if config.implicit_tls or config.starttls else None
    client: smtplib.SMTP
    if config.implicit_tls:
        client = smtplib.SMTP_SSL(
            config.host,
            config.port,
            local_hostname=socket.gethostname(),
            timeout=config.timeout,
            context=context,
        )
    else:
        client = smtplib.SMTP(
            config.host, config.port, local_hostname=socket.gethostname(), timeout=config.timeout
        )
    try:
        client.ehlo()
        if config.starttls and not config.implicit_tls:
            if not client.has_extn("starttls"):
                raise _Unsent(
                    SendOutcome.REFUSED,
                    f"the SMTP server {config.host}:{config.port} does not offer STARTTLS; "
                    "refusing to send in clear (FERROUS_SMTP_STARTTLS=false allows it)",
                )
            client.starttls(context=context)
            client.ehlo()
        if config.username:
            client.login(config.username, config.password or "")
        envelope_from = parseaddr(config.sender)[1] or config.sender
        refused = client.send_message(message, from_addr=envelope_from, to_addrs=recipients)
        with contextlib.suppress(smtplib.SMTPException, OSError):
            client.quit()  # the message was taken; a rude goodbye changes nothing
    finally:
        client.close()
    if not refused:
        return None
    return "; ".join(
        f"{address}: {_reply(code, text)}" for address, (code, text) in refused.items()
    )


def _attempt(config: SmtpConfig, message: EmailMessage, recipients: list[str]) -> SendResult:
    """One attempt, every failure turned into a ``SendResult`` (runs in a worker thread)."""
    try:
        note = _deliver(config, message, recipients)
    except _Unsent as exc:
        return SendResult(outcome=exc.outcome, response_status=exc.code, error=exc.error)
    except smtplib.SMTPRecipientsRefused as exc:
        # every recipient refused: retry only if one of them may be taken later
        codes = [code for code, _ in exc.recipients.values()]
        error = "; ".join(
            f"{address}: {_reply(code, text)}" for address, (code, text) in exc.recipients.items()
        )
        transient = any(400 <= code < 500 for code in codes)
        return SendResult(
            outcome=SendOutcome.RETRY if transient else SendOutcome.REFUSED,
            response_status=max(codes) if codes else None,
            error=_clip(error),
        )
    except smtplib.SMTPResponseException as exc:  # sender, data, auth, helo, connect
        unsent = _by_code(exc.smtp_code, _reply(exc.smtp_code, exc.smtp_error))
        return SendResult(outcome=unsent.outcome, response_status=exc.smtp_code, error=unsent.error)
    except smtplib.SMTPNotSupportedError as exc:  # AUTH (or another extension) not offered
        return SendResult(outcome=SendOutcome.REFUSED, error=_clip(f"SMTP server: {exc}"))
    except ssl.SSLCertVerificationError as exc:
        return SendResult(
            outcome=SendOutcome.REFUSED,
            error=_clip(f"the SMTP server's certificate does not verify: {exc.verify_message}"),
        )
    except (smtplib.SMTPException, OSError) as exc:  # no connection, timeout, dropped, TLS
        return SendResult(
            outcome=SendOutcome.RETRY,
            error=_clip(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__),
        )
    return SendResult(outcome=SendOutcome.DELIVERED, response_status=250, error=note)


class SmtpEmailChannel:
    """The ``email`` channel: sends a delivery to the rule's comma-separated addresses."""

    def __init__(self, config: SmtpConfig, *, concurrency: int = CONCURRENCY) -> None:
        self._config = config
        self._slots = asyncio.Semaphore(concurrency)

    async def send(self, delivery: DueNotification) -> SendResult:
        try:
            message = build_message(delivery, self._config.sender)
        except ValueError as exc:  # a header the email package will not write
            return SendResult(outcome=SendOutcome.REFUSED, error=_clip(f"bad message: {exc}"))
        recipients = [address for _, address in getaddresses([message["To"] or ""]) if address]
        if not recipients:
            return SendResult(outcome=SendOutcome.REFUSED, error="the rule has no addresses")
        async with self._slots:
            result = await asyncio.to_thread(_attempt, self._config, message, recipients)
        # the sender logs every outcome; only what it does not record is worth a warning here
        if result.outcome is SendOutcome.DELIVERED and result.error:
            log.warning(
                "email_recipients_refused", delivery_id=delivery.delivery_id, error=result.error
            )
        else:
            log.debug(
                "email_attempted",
                delivery_id=delivery.delivery_id,
                recipients=len(recipients),
                outcome=result.outcome.value,
                smtp_code=result.response_status,
            )
        return result

    async def close(self) -> None:
        """Nothing is kept open between messages."""


class UnconfiguredEmailChannel:
    """Stands in for email when no relay is set: every delivery fails, saying so."""

    async def send(self, delivery: DueNotification) -> SendResult:
        return SendResult(outcome=SendOutcome.REFUSED, error=NOT_CONFIGURED)

    async def close(self) -> None:
        """Nothing to close."""
