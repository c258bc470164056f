"""The email that tells about a finished build: subject, headers, plain text and HTML.

The words follow GitLab's pipeline emails ("failed", "fixed", "succeeded"). Everything in the
message comes from the delivery alone (its stored notice and its creation time), so a resend
after a crash is the same message with the same ``Message-ID``, which mail clients and
servers recognise as a duplicate.
"""

from __future__ import annotations

import hashlib
import html
from datetime import UTC
from email.message import EmailMessage
from email.utils import format_datetime

from ferrous.domain.notification import (
    EVENT_TEST,
    BuildNotice,
    DueNotification,
    FailedJob,
    email_addresses,
)

MESSAGE_ID_DOMAIN = "ferrous"

_WORDS = {
    "failed": "failed",
    "success": "succeeded",
    "canceled": "was canceled",
    "skipped": "was skipped",
}
_COLOURS = {"failed": "#c0392b", "success": "#1e8449"}


def message_id(delivery_id: str) -> str:
    return f"<{delivery_id}@{MESSAGE_ID_DOMAIN}>"


def _one_line(text: str) -> str:
    """Header values must not break lines (a header injection); collapse all whitespace."""
    return " ".join(text.split())


def _outcome(notice: BuildNotice) -> str:
    if notice.status == "success" and notice.previous_status == "failed":
        return "fixed"
    return _WORDS.get(notice.status, notice.status)


def subject(delivery: DueNotification) -> str:
    notice = delivery.notice
    if delivery.event == EVENT_TEST:
        return _one_line(f"[{notice.project_name}] Test notification from Ferrous CI")
    return _one_line(
        f"[{notice.project_name}] Build #{notice.build_number} {_outcome(notice)} on {notice.ref}"
    )


def _duration(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}h {minutes}m {secs}s"
    return f"{minutes}m {secs}s" if minutes else f"{secs}s"


def _commit(notice: BuildNotice) -> str:
    text = notice.sha[:12]
    if notice.commit_message:
        text += " " + notice.commit_message.strip().splitlines()[0]
    if notice.commit_author:
        text += f" ({notice.commit_author})"
    return text


def _job_line(job: FailedJob) -> str:
    details = []
    if job.failure_reason:
        details.append(job.failure_reason.replace("_", " "))
    if job.exit_code is not None:
        details.append(f"exit code {job.exit_code}")
    suffix = f": {', '.join(details)}" if details else ""
    return f"{job.name} (stage {job.stage}){suffix}"


def _facts(notice: BuildNotice) -> list[tuple[str, str]]:
    facts = [
        ("Project", notice.project_name),
        ("Pipeline", notice.pipeline_name),
        ("Ref", notice.ref),
        ("Commit", _commit(notice)),
    ]
    duration = _duration(notice.duration_seconds)
    if duration is not None:
        facts.append(("Duration", duration))
    return facts


def _headline(delivery: DueNotification) -> str:
    notice = delivery.notice
    line = (
        f"Build #{notice.build_number} of pipeline {notice.pipeline_name} "
        f"{_outcome(notice)} on {notice.ref}."
    )
    if delivery.event == EVENT_TEST:
        line = "This is a test notification; the build below is made up. " + line
    return line


def plain_text(delivery: DueNotification) -> str:
    notice = delivery.notice
    lines = [_headline(delivery), ""]
    width = max(len(name) for name, _ in _facts(notice)) + 1
    lines += [f"{name + ':':<{width}} {value}" for name, value in _facts(notice)]
    if notice.failed_jobs:
        lines += ["", "Failed jobs:"]
        lines += [f"  - {_job_line(job)}" for job in notice.failed_jobs]
    if notice.url:
        lines += ["", f"View the build: {notice.url}"]
    lines += ["", "-- ", f"Ferrous CI, notification {delivery.delivery_id}"]
    return "\n".join(lines) + "\n"


def html_text(delivery: DueNotification) -> str:
    notice = delivery.notice
    esc = html.escape
    colour = _COLOURS.get(notice.status, "#555555")
    rows = "".join(
        f'<tr><th align="left" style="padding-right:1em">{esc(name)}</th><td>{esc(value)}</td></tr>'
        for name, value in _facts(notice)
    )
    parts = [
        "<!DOCTYPE html>",
        '<html><body style="font-family:sans-serif">',
        f'<p style="color:{colour};font-weight:bold">{esc(_headline(delivery))}</p>',
        f"<table>{rows}</table>",
    ]
    if notice.failed_jobs:
        items = "".join(f"<li>{esc(_job_line(job))}</li>" for job in notice.failed_jobs)
        parts.append(f"<p>Failed jobs:</p><ul>{items}</ul>")
    if notice.url:
        parts.append(f'<p><a href="{esc(notice.url)}">View the build</a></p>')
    parts.append(
        f'<p style="color:#888888;font-size:small">Ferrous CI, notification '
        f"{esc(delivery.delivery_id)}</p></body></html>"
    )
    return "\n".join(parts) + "\n"


def build_message(delivery: DueNotification, sender: str) -> EmailMessage:
    """The whole message; ``To`` is the rule's addresses, ``From`` the configured sender."""
    notice = delivery.notice
    message = EmailMessage()
    message["Subject"] = subject(delivery)
    message["From"] = sender
    message["To"] = ", ".join(email_addresses(delivery.target))
    created = delivery.created_at
    message["Date"] = format_datetime(created if created.tzinfo else created.replace(tzinfo=UTC))
    message["Message-ID"] = message_id(delivery.delivery_id)
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies, please
    message["X-Ferrous-Delivery"] = delivery.delivery_id
    message["X-Ferrous-Event"] = delivery.event
    message["X-Ferrous-Project"] = _one_line(notice.project_name)
    message["X-Ferrous-Build-Id"] = notice.build_id
    message["X-Ferrous-Build-Status"] = notice.status
    message.set_content(plain_text(delivery))
    message.add_alternative(html_text(delivery), subtype="html")
    # a fixed boundary (not random) makes a resend byte for byte the same message
    digest = hashlib.sha256(delivery.delivery_id.encode()).hexdigest()[:32]
    message.set_boundary(f"==ferrous-{digest}==")
    return message
