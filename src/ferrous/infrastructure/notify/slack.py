"""Slack-compatible incoming webhooks (Slack, Mattermost, Rocket.Chat take the same body).

``{"text": ..., "blocks": [...]}``: ``text`` is the fallback (notifications, old clients),
the blocks show the status, the commit, the failed jobs and a link to the build. The
answers mean what they mean for outgoing webhooks (``webhook.post_json``).
"""

from __future__ import annotations

import json
from typing import Any

from ferrous.domain.notification import BuildNotice, DueNotification, SendResult
from ferrous.infrastructure.notify.webhook import TIMEOUT, new_client, post_json

_ICON = {"failed": ":x:", "success": ":white_check_mark:", "canceled": ":no_entry_sign:"}
FAILED_JOBS_SHOWN = 10


def _escape(text: str) -> str:
    """Slack's mrkdwn takes these three as markup."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m {secs}s" if minutes else f"{secs}s"


def slack_body(notice: BuildNotice, *, test: bool = False) -> dict[str, Any]:
    icon = _ICON.get(notice.status, ":information_source:")
    title = ("[test] " if test else "") + notice.title
    link = f"<{notice.url}|{_escape(title)}>" if notice.url else _escape(title)
    fields = [
        {"type": "mrkdwn", "text": f"*Status*\n{_escape(notice.status)}"},
        {"type": "mrkdwn", "text": f"*Ref*\n`{_escape(notice.ref)}`"},
        {"type": "mrkdwn", "text": f"*Commit*\n`{notice.sha[:12]}`"},
        {"type": "mrkdwn", "text": f"*Duration*\n{_duration(notice.duration_seconds)}"},
    ]
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"{icon} *{link}*"}},
        {"type": "section", "fields": fields},
    ]
    if notice.commit_message:
        first = notice.commit_message.splitlines()[0][:200]
        by = f" ({_escape(notice.commit_author)})" if notice.commit_author else ""
        blocks.append(
            {"type": "context", "elements": [{"type": "mrkdwn", "text": _escape(first) + by}]}
        )
    if notice.failed_jobs:
        lines = [
            f"• `{_escape(j.name)}` ({_escape(j.stage)}): {_escape(j.failure_reason or 'failed')}"
            + (f", exit code {j.exit_code}" if j.exit_code is not None else "")
            for j in notice.failed_jobs[:FAILED_JOBS_SHOWN]
        ]
        more = len(notice.failed_jobs) - FAILED_JOBS_SHOWN
        if more > 0:
            lines.append(f"… and {more} more")
        blocks.append(
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": "*Failed jobs*\n" + "\n".join(lines)},
            }
        )
    text = f"{title}: {notice.url}" if notice.url else title
    return {"text": text, "blocks": blocks}


class SlackChannel:
    def __init__(self, timeout: float = TIMEOUT) -> None:
        self._client = new_client(timeout)

    async def send(self, delivery: DueNotification) -> SendResult:
        body = slack_body(delivery.notice, test=delivery.event == "ping")
        return await post_json(self._client, delivery.target, json.dumps(body).encode(), headers={})

    async def close(self) -> None:
        await self._client.aclose()
