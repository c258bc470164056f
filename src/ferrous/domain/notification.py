"""Notification rules, the notices of finished builds, and the deliveries that carry them.

A rule says who hears about which builds of a project: a channel (an outgoing webhook, a
Slack-compatible incoming webhook, email), a target, the outcomes it cares about and the refs.
The outcomes follow GitLab's and Buildkite's words: ``failure`` (the build failed),
``recovery`` (it succeeded and the previous finished build of the same pipeline and ref had
failed), ``success``, and ``always`` (any final status, canceled and skipped included).

A delivery is one notice for one rule, queued in the transaction that finished the build (the
outbox), so a crash loses none; its id is sent along (a webhook header, the email's
Message-ID), so a receiver can recognise the rare resend after a crash between sending and
recording: delivery is at least once, recorded exactly once.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from ferrous.domain.errors import InvalidValue
from ferrous.domain.ids import new_id


class NotifyChannel(StrEnum):
    WEBHOOK = "webhook"
    SLACK = "slack"
    EMAIL = "email"


class NotifyOn(StrEnum):
    FAILURE = "failure"
    RECOVERY = "recovery"
    SUCCESS = "success"
    ALWAYS = "always"


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


class SendOutcome(StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"  # the receiver may take it later (5xx, 408, 429, no connection)
    REFUSED = "refused"  # it never will (4xx, a rejected address): failed at once


#: the event names (``X-Ferrous-Event``)
EVENT_FAILED = "build.failed"
EVENT_RECOVERED = "build.recovered"
EVENT_SUCCEEDED = "build.succeeded"
EVENT_CANCELED = "build.canceled"
EVENT_SKIPPED = "build.skipped"
EVENT_TEST = "ping"  # a test delivery asked for by a person

_FINAL = {"success", "failed", "canceled", "skipped"}
NAME_MAX = 100
TARGET_MAX = 2000


def build_event(status: str, previous_status: str | None) -> str:
    if status == "failed":
        return EVENT_FAILED
    if status == "success":
        return EVENT_RECOVERED if previous_status == "failed" else EVENT_SUCCEEDED
    if status == "canceled":
        return EVENT_CANCELED
    return EVENT_SKIPPED


@dataclass(frozen=True, slots=True, kw_only=True)
class NotificationRule:
    id: str
    project_id: str
    name: str
    channel: NotifyChannel
    target: str  # a URL, or comma-separated addresses for email
    on: frozenset[NotifyOn]
    branches: tuple[str, ...] = ()  # glob patterns of refs; empty: every ref
    enabled: bool = True
    secret: str | None = None  # sealed by the secret box (webhooks sign with it)
    created_at: datetime

    @classmethod
    def create(
        cls,
        *,
        project_id: str,
        name: str,
        channel: NotifyChannel,
        target: str,
        on: frozenset[NotifyOn],
        branches: tuple[str, ...] = (),
        enabled: bool = True,
        secret: str | None = None,
        created_at: datetime,
    ) -> NotificationRule:
        rule = cls(
            id=new_id(),
            project_id=project_id,
            name=name,
            channel=channel,
            target=target,
            on=on,
            branches=branches,
            enabled=enabled,
            secret=secret,
            created_at=created_at,
        )
        rule.check()
        return rule

    def check(self) -> None:
        """Raises ``InvalidValue`` for a rule that could never deliver anything."""
        if not self.name.strip() or len(self.name) > NAME_MAX:
            raise InvalidValue(f"a rule's name has 1 to {NAME_MAX} characters")
        if not self.on:
            raise InvalidValue("a rule needs at least one of failure, recovery, success, always")
        target = self.target.strip()
        if not target or len(target) > TARGET_MAX:
            raise InvalidValue(f"a rule's target has 1 to {TARGET_MAX} characters")
        if self.channel is NotifyChannel.EMAIL:
            if not email_addresses(target):
                raise InvalidValue("an email rule's target names at least one address")
            for address in email_addresses(target):
                local, at, domain = address.rpartition("@")
                if not at or not local or "." not in domain or any(c in address for c in " <>"):
                    raise InvalidValue(f"not an email address: {address!r}")
        elif not target.startswith(("http://", "https://")):
            raise InvalidValue("a webhook's target is an http:// or https:// URL")

    def matches(self, status: str, previous_status: str | None, ref: str) -> bool:
        """Whether a build of ``ref`` that finished with ``status`` is told to this rule.

        ``previous_status``: of the previous finished build of the same pipeline and ref.
        """
        if not self.enabled or status not in _FINAL:
            return False
        if self.branches and not any(fnmatch.fnmatchcase(ref, p) for p in self.branches):
            return False
        if NotifyOn.ALWAYS in self.on:
            return True
        if status == "failed":
            return NotifyOn.FAILURE in self.on
        if status == "success":
            if NotifyOn.SUCCESS in self.on:
                return True
            return NotifyOn.RECOVERY in self.on and previous_status == "failed"
        return False


def email_addresses(target: str) -> list[str]:
    return [a.strip() for a in target.split(",") if a.strip()]


@dataclass(frozen=True, slots=True, kw_only=True)
class FailedJob:
    name: str
    stage: str
    failure_reason: str | None
    exit_code: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class BuildNotice:
    """What a notification tells about a finished build; stored with each delivery, so a
    resend says exactly what the first attempt said. ``url`` is filled by the sender."""

    project_id: str
    project_name: str
    pipeline_name: str
    build_id: str
    build_number: int
    status: str
    previous_status: str | None
    ref: str
    sha: str
    commit_message: str | None = None
    commit_author: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_seconds: float | None = None
    failed_jobs: tuple[FailedJob, ...] = ()
    url: str = ""

    @property
    def title(self) -> str:
        words = {
            "failed": "failed",
            "success": "recovered" if self.previous_status == "failed" else "succeeded",
            "canceled": "was canceled",
            "skipped": "was skipped",
        }.get(self.status, self.status)
        return (
            f"{self.project_name} / {self.pipeline_name} #{self.build_number} {words} on {self.ref}"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "project": {"id": self.project_id, "name": self.project_name},
            "pipeline": {"name": self.pipeline_name},
            "build": {
                "id": self.build_id,
                "number": self.build_number,
                "status": self.status,
                "previous_status": self.previous_status,
                "ref": self.ref,
                "sha": self.sha,
                "url": self.url,
                "started_at": _iso(self.started_at),
                "finished_at": _iso(self.finished_at),
                "duration_seconds": self.duration_seconds,
            },
            "commit": {"message": self.commit_message, "author": self.commit_author},
            "failed_jobs": [
                {
                    "name": j.name,
                    "stage": j.stage,
                    "failure_reason": j.failure_reason,
                    "exit_code": j.exit_code,
                }
                for j in self.failed_jobs
            ],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BuildNotice:
        build = data["build"]
        commit = data.get("commit") or {}
        return cls(
            project_id=data["project"]["id"],
            project_name=data["project"]["name"],
            pipeline_name=data["pipeline"]["name"],
            build_id=build["id"],
            build_number=build["number"],
            status=build["status"],
            previous_status=build.get("previous_status"),
            ref=build["ref"],
            sha=build["sha"],
            commit_message=commit.get("message"),
            commit_author=commit.get("author"),
            started_at=_parse(build.get("started_at")),
            finished_at=_parse(build.get("finished_at")),
            duration_seconds=build.get("duration_seconds"),
            failed_jobs=tuple(
                FailedJob(
                    name=j["name"],
                    stage=j["stage"],
                    failure_reason=j.get("failure_reason"),
                    exit_code=j.get("exit_code"),
                )
                for j in data.get("failed_jobs", ())
            ),
            url=build.get("url", ""),
        )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


@dataclass(frozen=True, slots=True, kw_only=True)
class NotificationDelivery:
    """One notice for one rule, as the delivery log shows it."""

    id: str  # the delivery id the receiver sees
    rule_id: str
    build_id: str | None  # None: a test delivery
    event: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    response_status: int | None
    created_at: datetime
    delivered_at: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DueNotification:
    """A queued delivery whose time has come, with what its channel needs to send it."""

    delivery_id: str
    rule_id: str
    project_id: str
    channel: NotifyChannel
    target: str
    secret: str | None  # sealed as stored; the sender opens it before the channel sees it
    event: str
    notice: BuildNotice
    attempts: int  # failed attempts so far
    created_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class SendResult:
    """What a channel made of one attempt; channels return it rather than raise."""

    outcome: SendOutcome
    response_status: int | None = None  # HTTP status, or SMTP reply code
    error: str | None = None
    retry_after: float | None = None  # seconds the receiver asked us to wait


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryResult:
    """What the sender records for one attempt."""

    delivery_id: str
    attempts: int  # including this one
    at: datetime
    status: DeliveryStatus  # PENDING: try again at ``next_attempt_at``
    next_attempt_at: datetime | None = None
    response_status: int | None = None
    error: str | None = None
