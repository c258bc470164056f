"""What the HTTP API needs from the rest of the server, as one small dataclass of ports.

The server wiring (``ferrous serve``) builds an ``ApiServices`` from the message bus, the
read-side queries, the log store and the broker; tests build one from fakes. The API holds no
other state: each call here opens and closes its own connection, so a long-poll or a live-log
stream holds no database connection while it waits.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from opentelemetry.trace import Tracer

from ferrous.api.rate_limits import LoginLimits, RequestLimits
from ferrous.application.artifacts import Artifacts
from ferrous.application.authentication import Authenticator
from ferrous.application.caches import Caches
from ferrous.application.commands import Command
from ferrous.application.guard_ports import AuditLog, RateLimiter
from ferrous.application.identity_queries import IdentityQueries
from ferrous.application.notifications import NotificationReads
from ferrous.application.queries import Queries
from ferrous.application.readiness import Readiness
from ferrous.application.test_reports import TestCaseStore


class CommandBus(Protocol):
    """``ferrous.application.messagebus.MessageBus`` satisfies this."""

    async def handle(self, command: Command) -> Any: ...


class LogReader(Protocol):
    """Reads a job's log bytes (``application.ports.LogStore`` satisfies this)."""

    async def read(self, job_id: str, start: int = 0, end: int | None = None) -> bytes:
        """Bytes ``[start, end)`` of the log (to its end when ``end`` is None)."""
        ...

    async def size(self, job_id: str) -> int: ...


@dataclass(frozen=True, slots=True)
class LogSignal:
    """Something happened to a job's log: bytes were appended, or the job finished.

    It carries no bytes: the stream reads them from the ``LogReader`` (the source of truth),
    so a lost or repeated signal never corrupts what a viewer sees.
    """

    finished: bool = False  # the job reached a final status (success, failed, ...)


class LogSubscription(Protocol):
    """An active subscription; an async generator object satisfies this."""

    def __aiter__(self) -> AsyncIterator[LogSignal]: ...

    async def __anext__(self) -> LogSignal: ...

    async def aclose(self) -> None: ...


class LogFeed(Protocol):
    async def subscribe(self, job_id: str) -> LogSubscription:
        """Start listening to a job's log; the stream calls ``aclose`` when its viewer leaves.

        Signals are wake-ups and may be coalesced. A signal that finds no new bytes makes
        the stream re-read the job's status, so a feed that may lose signals (a broker, or
        a subscription that only starts listening on its first ``__anext__``) should also
        yield a plain ``LogSignal()`` after a few seconds of silence: then nothing is ever
        later than that. ``LogSignal(finished=True)`` ends a stream at once.
        """
        ...


class ClaimWaiter(Protocol):
    async def wait(self, timeout: float) -> None:
        """Return when new jobs may be claimable, or after ``timeout`` seconds.

        The claim long-poll starts this coroutine *before* it tries to claim, then awaits
        it only if nothing was claimable; so the waiter must be listening from its first
        step (register the waiter before the first ``await``), or a wake-up that arrives
        during the claim is lost until the timeout.
        """
        ...

    @property
    def closing(self) -> bool:
        """True once the server is stopping: a long-poll answers 204 at once."""
        ...


class ReadinessProbe(Protocol):
    """``application.readiness.ReadinessCheck`` satisfies this."""

    async def check(self) -> Readiness: ...


class MetricsExporter(Protocol):
    """``infrastructure.metrics.PrometheusMetrics`` satisfies this (see ``api.metrics``)."""

    @property
    def content_type(self) -> str: ...

    def http_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one answered request and its latency (cheap: it runs on every request)."""
        ...

    async def exposition(self) -> bytes:
        """The metrics in the text format of ``content_type``."""
        ...


#: ``token_hash`` (``register_agent.hash_token``) -> the id of the agent holding that token,
#: or None (NotFound is also accepted). Called at most every few seconds per agent: the API
#: caches positive answers briefly.
AgentLookup = Callable[[str], Awaitable[str | None]]


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiServices:
    bus: CommandBus
    queries: Queries  # must read the primary: writes are answered by reading back
    logs_reader: LogReader
    log_events: LogFeed
    claim_waiter: ClaimWaiter
    agent_by_token_hash: AgentLookup
    #: the server-wide bootstrap token; empty: only admin-created registration tokens work
    agent_registration_token: str
    claim_timeout: float = 25.0
    webhook_max_bytes: int = 25 * 1024 * 1024
    agent_token_cache_seconds: float = 10.0
    #: who calls, from an access token or an API token; None: nobody can sign in
    authenticator: Authenticator | None = None
    #: users and API tokens, to list (never their hashes)
    identities: IdentityQueries | None = None
    #: where state-changing requests are recorded (``api.audit``); None: nowhere
    audit_log: AuditLog | None = None
    #: request and login limits (``api.rate_limits``); None: nothing is limited
    rate_limiter: RateLimiter | None = None
    request_limits: RequestLimits = field(default_factory=RequestLimits)
    login_limits: LoginLimits = field(default_factory=LoginLimits)
    cors_origins: tuple[str, ...] = ()  # empty: no CORS headers
    trusted_proxies: tuple[str, ...] = ()  # whose X-Forwarded-For is believed
    #: jobs' artifacts and projects' caches (``application.artifacts``, ``.caches``);
    #: None: their routes answer 503
    artifacts: Artifacts | None = None
    caches: Caches | None = None
    #: JUnit reports' test cases; None: the test report routes answer 404
    test_cases: TestCaseStore | None = None
    #: the HTTP requests' spans (``api.tracing``); None: requests are not traced
    tracer: Tracer | None = None
    #: notification rules and their delivery logs; None: their reads answer 503
    notifications: NotificationReads | None = None
    #: request timing and ``/metrics``; None: nothing is timed and ``/metrics`` answers 404
    metrics: MetricsExporter | None = None
    metrics_token: str | None = None  # set: ``/metrics`` needs it as a bearer token
    #: the backends ``/readyz`` asks; None: nothing to ask, always ready
    readiness: ReadinessProbe | None = None
