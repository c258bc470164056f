"""The status sender: posts the queued commit status reports to the forges.

Reports are queued by the unit of work in the transaction that changed a build, so they
survive any crash; this singleton (one server of a cluster runs it) sends the due ones. A
pass reads them in one short transaction (settling the superseded ones first), sends them
with no transaction open, and records each outcome in another. A server that dies in
between sends those again later: posting the same status twice is harmless.

Failures: a report the forge may take later (5xx, 429, a rate limit, no connection) is tried
again after 1, 2, 4, ... seconds (capped at ``MAX_DELAY``), or after the forge's
``Retry-After``; after ``MAX_ATTEMPTS`` it is given up. A refusal (401, 404, 422, ...) is
given up at once, with the forge's answer kept as ``last_error``: a bad token must not be
hammered.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime, timedelta

import structlog

from ferrous.application.dependencies import Dependencies
from ferrous.application.forge_settings import open_token
from ferrous.application.outgoing import IDLE, backoff, build_url, run_sender, send_all
from ferrous.application.ports import UnitOfWork
from ferrous.application.signals import Flag
from ferrous.application.status_ports import CommitStatusClient
from ferrous.domain.commit_status import (
    DueReport,
    ReportOutcome,
    ReportResult,
    StatusNotDelivered,
)
from ferrous.domain.errors import FerrousError

log = structlog.get_logger(__name__)

BATCH = 50
CONCURRENCY = 8  # requests in flight per pass
MAX_DELAY = 300.0
MAX_ATTEMPTS = 10
KEEP = timedelta(days=7)  # settled reports are deleted after this
PRUNE_EVERY = timedelta(hours=1)


class StatusSender:
    def __init__(
        self,
        uow_factory: Callable[[], UnitOfWork],
        client: CommitStatusClient,
        deps: Dependencies,
    ) -> None:
        self._uow_factory = uow_factory
        self._client = client
        self._deps = deps
        self._pruned_at: datetime | None = None

    async def close(self) -> None:
        await self._client.close()

    async def send_due(self, limit: int = BATCH) -> int:
        """One pass: send what is due; returns how many reports were tried."""
        now = self._deps.clock.now()
        async with self._uow_factory() as uow:
            reports = await uow.status_reports.due(now, limit)
            if self._pruned_at is None or now - self._pruned_at >= PRUNE_EVERY:
                await uow.status_reports.prune(now - KEEP)
                self._pruned_at = now
            await uow.commit()
        if not reports:
            return 0
        results = await send_all(reports, self._send, CONCURRENCY)
        async with self._uow_factory() as uow:
            await uow.status_reports.settle(results)
            await uow.commit()
        return len(reports)

    async def _send(self, report: DueReport) -> ReportResult:
        attempts = report.attempts + 1
        url = build_url(self._deps.server_url, report.build_id)
        status = dataclasses.replace(report.status, target_url=url)
        fields = {"report_id": report.id, "build_id": report.build_id, "context": status.context}
        try:
            if report.forge is None:
                raise StatusNotDelivered("the project reports to no forge now", retryable=False)
            target = report.forge.target(report.repo_url)
            token = open_token(report.project_id, report.forge, self._deps.secret_box)
            await self._client.post(target, token, status)
        except StatusNotDelivered as exc:
            at = self._deps.clock.now()
            if exc.retryable and attempts < MAX_ATTEMPTS:
                delay = backoff(attempts, exc.retry_after, cap=MAX_DELAY)
                log.info("commit_status_retry", **fields, attempt=attempts, error=exc.message)
                return ReportResult(
                    report_id=report.id,
                    attempts=attempts,
                    at=at,
                    outcome=None,
                    next_attempt_at=at + timedelta(seconds=delay),
                    error=exc.message,
                )
            log.warning("commit_status_given_up", **fields, attempt=attempts, error=exc.message)
            return _given_up(report, attempts, at, exc.message)
        except FerrousError as exc:  # a forge link or token that cannot work any more
            log.warning("commit_status_given_up", **fields, attempt=attempts, error=exc.message)
            return _given_up(report, attempts, self._deps.clock.now(), exc.message)
        log.info("commit_status_sent", **fields, state=status.state.value)
        return ReportResult(
            report_id=report.id,
            attempts=attempts,
            at=self._deps.clock.now(),
            outcome=ReportOutcome.SENT,
            target_url=url,
        )


def _given_up(report: DueReport, attempts: int, at: datetime, error: str) -> ReportResult:
    return ReportResult(
        report_id=report.id,
        attempts=attempts,
        at=at,
        outcome=ReportOutcome.GIVEN_UP,
        error=error,
    )


async def run_status_sender(sender: StatusSender, nudge: Flag, idle: float = IDLE) -> None:
    """Send due reports; woken after commits on this server, else every ``idle`` seconds
    (reports queued by other servers, retries coming due)."""
    await run_sender("status_sender", sender.send_due, nudge, batch=BATCH, idle=idle)
