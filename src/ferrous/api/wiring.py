"""Builds the API's ports from a bootstrapped server."""

from __future__ import annotations

from collections.abc import AsyncGenerator

from ferrous.api.rate_limits import LoginLimits, RequestLimits
from ferrous.api.services import ApiServices, LogSignal, LogSubscription
from ferrous.application.bootstrap import Server
from ferrous.application.notifications import NotificationReads
from ferrous.application.signals import JobSignals

#: How often a live-log stream re-checks the store without a wake-up (a lost broker message
#: delays a viewer at most this long).
LOG_SILENCE = 5.0


class _LogReader:
    def __init__(self, server: Server) -> None:
        self._server = server

    async def read(self, job_id: str, start: int = 0, end: int | None = None) -> bytes:
        return await self._server.read_log(job_id, start, end)

    async def size(self, job_id: str) -> int:
        return await self._server.log_size(job_id)


class _LogFeed:
    def __init__(self, signals: JobSignals) -> None:
        self._signals = signals

    async def subscribe(self, job_id: str) -> LogSubscription:
        watch = self._signals.watch_log(job_id)

        async def signals() -> AsyncGenerator[LogSignal]:
            try:
                while not self._signals.closing:
                    await watch.wait(LOG_SILENCE)
                    yield LogSignal()
            finally:
                watch.close()

        return signals()


class _ClaimWaiter:
    def __init__(self, signals: JobSignals) -> None:
        self._signals = signals

    async def wait(self, timeout: float) -> None:
        await self._signals.jobs_available.wait(timeout)

    @property
    def closing(self) -> bool:
        return self._signals.closing


def api_services(server: Server) -> ApiServices:
    settings = server.settings
    return ApiServices(
        bus=server.bus,
        queries=server.queries,
        logs_reader=_LogReader(server),
        log_events=_LogFeed(server.signals),
        claim_waiter=_ClaimWaiter(server.signals),
        agent_by_token_hash=server.agent_by_token_hash,
        agent_registration_token=server.registration_token,
        authenticator=server.authenticator,
        identities=server.identities,
        claim_timeout=server.settings.claim_timeout,
        webhook_max_bytes=server.settings.webhook_max_bytes,
        audit_log=server.audit_log,
        rate_limiter=server.rate_limiter,
        request_limits=RequestLimits(
            per_ip=settings.rate_limit_per_ip,
            ip_burst=settings.rate_limit_ip_burst,
            per_user=settings.rate_limit_per_user,
            user_burst=settings.rate_limit_user_burst,
        ),
        login_limits=LoginLimits(
            failures_per_account=settings.login_failures_per_account,
            failures_per_ip=settings.login_failures_per_ip,
            window=settings.login_failure_window,
        ),
        cors_origins=settings.cors_origins,
        trusted_proxies=settings.trusted_proxies,
        artifacts=server.artifacts,
        caches=server.caches,
        test_cases=server.test_cases,
        tracer=server.telemetry.http_tracer(),
        notifications=NotificationReads(server.bus.uow_factory),
        metrics=server.metrics,
        metrics_token=settings.metrics_token,
        readiness=server.readiness,
    )
