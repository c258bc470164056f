"""The composition root: the one place that picks concrete adapters from the settings.

Everything else receives its collaborators; nothing reaches for a global. ``bootstrap``
returns a ``Server`` with the bus, the read side, the signals and the background loops, which
the ``serve`` command (or a test) starts and stops.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from functools import partial
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from ferrous.application.artifacts import Artifacts
from ferrous.application.authentication import Authenticator
from ferrous.application.background import (
    CLEANUP,
    DELAYED_JOBS,
    LEASE_REAPER,
    LOG_ARCHIVER,
    NOTIFICATION_SENDER,
    OUTBOX_RELAY,
    SCHEDULE_FIRER,
    STATUS_SENDER,
    run_as_singleton,
    run_cleanup,
    run_delayed_job_starter,
    run_lease_reaper,
    run_log_archiver,
    run_outbox_relay,
)
from ferrous.application.build_trace import build_trace_handler
from ferrous.application.caches import Caches
from ferrous.application.commands import AppendLog
from ferrous.application.dependencies import Dependencies, SystemClock
from ferrous.application.first_admin import create_first_admin
from ferrous.application.guard_ports import AuditLog, RateLimiter
from ferrous.application.identity_queries import IdentityQueries
from ferrous.application.log_archive import LogArchive
from ferrous.application.messagebus import MessageBus
from ferrous.application.metrics import observe_events
from ferrous.application.notification_sender import (
    NotificationSender,
    run_notification_sender,
)
from ferrous.application.ports import Broker, LeaderLock
from ferrous.application.queries import Queries
from ferrous.application.readiness import ReadinessCheck
from ferrous.application.retention import Retention, RetentionPolicy
from ferrous.application.schedule_firer import run_schedule_firer
from ferrous.application.signals import Flag, JobSignals
from ferrous.application.status_sender import StatusSender, run_status_sender
from ferrous.application.storage_ports import ObjectStore
from ferrous.application.test_reports import TestCaseStore, record_junit
from ferrous.domain.errors import NotFound
from ferrous.domain.events import (
    BuildCompleted,
    BuildCreated,
    BuildStarted,
    Event,
    JobCompleted,
    JobQueued,
)
from ferrous.infrastructure.broker.factory import broker_from_url
from ferrous.infrastructure.forges.registry import PARSERS
from ferrous.infrastructure.forges.statuses import HttpCommitStatusClient
from ferrous.infrastructure.git.source_repository import GitSourceRepository
from ferrous.infrastructure.metrics import PrometheusMetrics
from ferrous.infrastructure.notify import notification_channels
from ferrous.infrastructure.ratelimit import rate_limiter_for
from ferrous.infrastructure.security.access_tokens import JwtAccessTokens, signing_key
from ferrous.infrastructure.security.passwords import Argon2PasswordHasher
from ferrous.infrastructure.security.secret_box import AesGcmSecretBox, KeyRing, load_keys
from ferrous.infrastructure.settings import Settings, registration_token
from ferrous.infrastructure.sql.artifact_repository import SqlArtifactRepository
from ferrous.infrastructure.sql.audit_log import SqlAuditLog
from ferrous.infrastructure.sql.cache_repository import SqlCacheRepository
from ferrous.infrastructure.sql.engine import create_engine
from ferrous.infrastructure.sql.identity_queries import SqlIdentityQueries
from ferrous.infrastructure.sql.leader import leader_lock_for
from ferrous.infrastructure.sql.log_archive_index import SqlLogArchiveIndex
from ferrous.infrastructure.sql.metrics_queries import SqlMetricsQueries
from ferrous.infrastructure.sql.migrate import migrate
from ferrous.infrastructure.sql.outbox import OutboxMessage, relay_outbox
from ferrous.infrastructure.sql.queries import SqlQueries
from ferrous.infrastructure.sql.readiness import SqlReadinessProbe
from ferrous.infrastructure.sql.retention_queries import SqlRetentionIndex
from ferrous.infrastructure.sql.test_case_store import SqlTestCaseStore
from ferrous.infrastructure.sql.unit_of_work import SqlUnitOfWork
from ferrous.infrastructure.storage.factory import object_store
from ferrous.infrastructure.storage.log_frames import ZstdLogFrames
from ferrous.infrastructure.storage.memory import InMemoryObjectStore
from ferrous.infrastructure.telemetry import Telemetry, telemetry_from_environment

log = structlog.get_logger(__name__)

EVENTS_TOPIC = "events"
LOGS_TOPIC = "logs"
#: events that may change when the schedule firer must wake
SCHEDULE_EVENTS = frozenset({"ScheduleCreated", "ScheduleUpdated", "ScheduleDeleted"})
#: events after which the commit status sender has something to send (others: its polling)
STATUS_EVENTS = frozenset({"BuildCreated", "BuildStarted", "BuildCompleted"})


@dataclass(slots=True)
class Server:
    settings: Settings
    engine: AsyncEngine
    bus: MessageBus
    queries: Queries
    broker: Broker
    signals: JobSignals
    registration_token: str
    leader: LeaderLock
    relay_nudge: Flag = field(default_factory=Flag)
    status_sender: StatusSender | None = None  # posts commit statuses to the forges
    authenticator: Authenticator | None = None  # who calls: access and API tokens
    identities: IdentityQueries | None = None  # users and API tokens, to list
    audit_log: AuditLog | None = None  # None: FERROUS_AUDIT_LOG=false
    rate_limiter: RateLimiter | None = None  # the API's request and login limits
    status_nudge: Flag = field(default_factory=Flag)
    notification_sender: NotificationSender | None = None  # webhooks, Slack, email
    notification_nudge: Flag = field(default_factory=Flag)
    #: artifacts, caches and archived logs (``FERROUS_STORAGE_URL``); bootstrap sets the real one
    objects: ObjectStore = field(default_factory=InMemoryObjectStore)
    test_cases: TestCaseStore | None = None  # JUnit reports' cases, to read back
    artifacts: Artifacts | None = None  # jobs' artifacts (agent protocol and API)
    caches: Caches | None = None  # projects' caches (agent protocol)
    #: finished jobs' logs in the object store; None: logs stay chunks (read from the database)
    log_archive: LogArchive | None = None
    retention: Retention | None = None  # the cleanup of artifacts, caches and archived logs
    metrics: PrometheusMetrics | None = None  # /metrics: this server's and the database's
    readiness: ReadinessCheck | None = None  # /readyz: the database and the broker answer
    #: OpenTelemetry traces (``OTEL_*`` variables): HTTP requests and finished builds
    telemetry: Telemetry = field(default_factory=Telemetry)
    schedules_changed: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    archiving: set[asyncio.Task[Any]] = field(default_factory=set)  # logs being archived

    async def agent_by_token_hash(self, token_hash: str) -> str | None:
        try:
            async with SqlUnitOfWork(self.engine) as uow:
                return (await uow.agents.get_by_token_hash(token_hash)).id
        except NotFound:
            return None

    async def read_log(self, job_id: str, start: int = 0, end: int | None = None) -> bytes:
        if self.log_archive is not None:
            return await self.log_archive.read(job_id, start, end)
        async with SqlUnitOfWork(self.engine) as uow:
            return await uow.logs.read(job_id, start, end)

    async def log_size(self, job_id: str) -> int:
        if self.log_archive is not None:
            return await self.log_archive.size(job_id)
        async with SqlUnitOfWork(self.engine) as uow:
            return await uow.logs.size(job_id)

    def archive_log_soon(self, job_id: str) -> None:
        """Archive the job's log in the background (the agent's ``complete`` does not wait for
        it); the log archiver's sweep covers a server that dies first."""
        if self.log_archive is None:
            return
        task = asyncio.create_task(self._archive_log(self.log_archive, job_id))
        self.archiving.add(task)
        task.add_done_callback(self.archiving.discard)

    async def _archive_log(self, archive: LogArchive, job_id: str) -> None:
        try:
            await archive.archive(job_id)
        except Exception:
            log.exception("job_log_archive_failed", job_id=job_id)

    async def relay_batch(self, limit: int) -> int:
        async def publish(message: OutboxMessage) -> None:
            # required: during a broker outage this raises instead of dropping the event, so
            # the relay leaves it (and the later ones) in the outbox and retries.
            await self.broker.publish(EVENTS_TOPIC, message.as_message(), required=True)

        return await relay_outbox(self.engine, publish, limit)

    def start(self) -> None:
        """Start the background loops (call from a running event loop).

        The outbox relay, the lease reaper, the delayed-job starter, the schedule firer, the
        commit status sender, the log archiver's sweep and the cleanup are singletons: they
        run on the one server that holds their lock (see ``background.run_as_singleton``).
        """
        singletons = {
            OUTBOX_RELAY: lambda: run_outbox_relay(self.relay_batch, self.relay_nudge),
            LEASE_REAPER: lambda: run_lease_reaper(self.bus, self.settings.lease_timeout),
            DELAYED_JOBS: lambda: run_delayed_job_starter(self.bus),
            SCHEDULE_FIRER: lambda: run_schedule_firer(
                self.bus, self.schedules_changed, self.settings.schedule_poll
            ),
        }
        if self.status_sender is not None:
            sender = self.status_sender
            singletons[STATUS_SENDER] = lambda: run_status_sender(sender, self.status_nudge)
        if self.notification_sender is not None:
            notifier = self.notification_sender
            singletons[NOTIFICATION_SENDER] = lambda: run_notification_sender(
                notifier, self.notification_nudge
            )
        if self.log_archive is not None:
            archive = self.log_archive
            singletons[LOG_ARCHIVER] = lambda: run_log_archiver(archive.sweep)
        if self.retention is not None:
            retention, interval = self.retention, self.settings.cleanup_interval
            singletons[CLEANUP] = lambda: run_cleanup(retention.run_pass, interval)
        self.tasks = [
            *(
                asyncio.create_task(run_as_singleton(self.leader, name, work), name=name)
                for name, work in singletons.items()
            ),
            asyncio.create_task(self._listen_events(), name="listen_events"),
            asyncio.create_task(self._listen_logs(), name="listen_logs"),
        ]

    async def stop(self) -> None:
        tasks = [*self.tasks, *self.archiving]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.leader.close()
        if self.readiness is not None:
            await self.readiness.aclose()
        await self.broker.close()
        if self.status_sender is not None:
            await self.status_sender.close()
        if self.notification_sender is not None:
            await self.notification_sender.close()
        if self.rate_limiter is not None:
            await self.rate_limiter.close()
        await self.objects.aclose()
        await asyncio.to_thread(self.telemetry.shutdown)  # exports the queued spans
        await self.engine.dispose()

    async def _listen_events(self) -> None:
        """Events committed by any server (this one included) wake our waiters."""
        async for message in _resilient(self.broker, EVENTS_TOPIC, self._events_missed):
            name = message.get("name")
            if name == "JobQueued":
                self.signals.jobs_available.set()
            elif name == "JobCompleted":
                self.signals.log_grew(str(message.get("payload", {}).get("job_id")))
            elif name in SCHEDULE_EVENTS:
                self.schedules_changed.set()
            if name in STATUS_EVENTS:
                self.status_nudge.set()  # another server's build may have a status to send
            if name == "BuildCompleted":
                self.notification_nudge.set()  # and notifications to send

    def _events_missed(self) -> None:
        """The events subscription was away: wake whatever its messages could have woken."""
        self.signals.wake_all()
        self.schedules_changed.set()

    async def _listen_logs(self) -> None:
        async for message in _resilient(self.broker, LOGS_TOPIC, self.signals.wake_all):
            self.signals.log_grew(str(message.get("job_id")))


async def _resilient(
    broker: Broker, topic: str, on_resume: Callable[[], None]
) -> AsyncIterator[dict[str, Any]]:
    """``broker.subscribe(topic)``, subscribed again if it fails; ``on_resume()`` whenever
    messages may have been missed (the subscription was away)."""
    while True:
        try:
            async for message in broker.subscribe(topic, on_resume=on_resume):
                yield message
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("broker_subscription_failed", topic=topic)
            await asyncio.sleep(2.0)


def with_identities(deps: Dependencies, settings: Settings, keys: KeyRing) -> Dependencies:
    """``deps`` with what signing people in needs: the password hasher, the access token
    signer (its key shared by every server of the installation) and the lifetimes."""
    return replace(
        deps,
        passwords=Argon2PasswordHasher(),
        access_tokens=JwtAccessTokens(signing_key(settings.jwt_key, keys)),
        access_token_ttl=timedelta(seconds=settings.access_token_ttl),
        session_ttl=timedelta(seconds=settings.session_ttl),
    )


def files_of(
    engine: AsyncEngine, objects: ObjectStore, deps: Dependencies, settings: Settings
) -> tuple[Artifacts, Caches]:
    """Artifacts (with their JUnit reports read into ``deps.test_cases``) and caches."""
    record = None
    if deps.test_cases is not None:
        record = partial(record_junit, deps.test_cases)  # the `junit` upload's reports
    artifacts = Artifacts(
        repository=SqlArtifactRepository(engine),
        objects=objects,
        clock=deps.clock,
        scratch=settings.data_dir / "tmp",
        max_bytes=settings.artifact_max_bytes,
        max_unpacked_bytes=settings.artifact_max_unpacked_bytes,
        default_expire_in=settings.artifacts_expire_in,
        record_junit=record,
    )
    caches = Caches(
        repository=SqlCacheRepository(engine),
        objects=objects,
        clock=deps.clock,
        max_bytes=settings.artifact_max_bytes,
        max_unpacked_bytes=settings.artifact_max_unpacked_bytes,
    )
    return artifacts, caches


async def _first_admin(bus: MessageBus, settings: Settings) -> None:
    """Make ``admin`` on an installation without users, and say so once, on stderr."""
    created = await create_first_admin(bus, settings.admin_password)
    if created is None:
        return
    user, generated = created
    password = generated if generated is not None else "from FERROUS_ADMIN_PASSWORD"
    sys.stderr.write(f"created the first admin: username {user.username}, password {password}\n")
    sys.stderr.flush()
    log.warning("first_admin_created", username=user.username, generated=generated is not None)


def retention_policy(settings: Settings) -> RetentionPolicy:
    """What the cleanup keeps and sweeps, from the settings."""
    return RetentionPolicy.from_days(
        log_max_age_days=settings.log_max_age_days,
        log_max_total_bytes=settings.log_max_total_bytes,
        cache_max_age_days=settings.cache_max_age_days,
        cache_max_total_bytes=settings.cache_max_total_bytes,
        orphan_sweep=settings.orphan_sweep,
        orphan_grace_hours=settings.orphan_grace_hours,
        orphan_interval_hours=settings.orphan_interval_hours,
    )


async def bootstrap(settings: Settings) -> Server:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_engine(settings.resolved_database_url)
    await migrate(engine)
    broker = broker_from_url(settings.broker_url)
    objects = object_store(settings)
    signals = JobSignals()

    def keys() -> KeyRing:
        return load_keys(settings.secret_key, settings.data_dir)

    lease_timeout = timedelta(seconds=settings.lease_timeout)
    metrics = PrometheusMetrics(SqlMetricsQueries(engine), SystemClock(), lease_timeout)
    deps = Dependencies(
        clock=SystemClock(),
        metrics=metrics,
        sources=GitSourceRepository(settings.data_dir / "trees", settings.data_dir / "mirrors"),
        secret_box=AesGcmSecretBox(keys(), reload=keys),
        lease_timeout=timedelta(seconds=settings.lease_timeout),
        server_url=settings.url,
        max_unpacked_bytes=settings.artifact_max_unpacked_bytes,
        webhook_parsers=PARSERS,
        objects=objects,
        test_cases=SqlTestCaseStore(engine),
    )
    deps = with_identities(deps, settings, keys())
    bus = MessageBus(lambda: SqlUnitOfWork(engine), deps)
    server = Server(
        settings=settings,
        engine=engine,
        bus=bus,
        queries=SqlQueries(engine),
        broker=broker,
        signals=signals,
        registration_token=registration_token(settings),
        leader=leader_lock_for(engine),
        audit_log=SqlAuditLog(engine) if settings.audit_log else None,
        # the broker's Redis, when it is one, unless FERROUS_RATE_LIMIT_URL says otherwise
        rate_limiter=rate_limiter_for(settings.rate_limit_url, settings.broker_url),
        objects=objects,
        test_cases=deps.test_cases,
        log_archive=LogArchive(SqlLogArchiveIndex(engine), objects, ZstdLogFrames(), deps.clock),
        retention=Retention(
            SqlRetentionIndex(engine),
            objects,
            retention_policy(settings),
            deps.clock,
        ),
    )
    bus.on_events_committed(server.relay_nudge.set)
    server.artifacts, server.caches = files_of(engine, objects, deps, settings)
    server.status_sender = StatusSender(bus.uow_factory, HttpCommitStatusClient(), deps)
    server.notification_sender = NotificationSender(
        bus.uow_factory, notification_channels(settings), deps
    )

    async def build_finished(event: Event) -> None:
        server.notification_nudge.set()  # its deliveries were queued in its commit

    async def status_changed(event: Event) -> None:
        server.status_nudge.set()  # other changes are found by the sender's polling

    async def wake_claims(event: Event) -> None:
        signals.jobs_available.set()

    async def job_finished(event: Event) -> None:
        if isinstance(event, JobCompleted):
            # build_id, job_id (and agent_id, from the command) are bound by the bus
            log.info("job_completed", status=event.status, attempt=event.attempt)
            signals.log_grew(event.job_id)
            server.archive_log_soon(event.job_id)  # only once the job is finished for good

    async def log_appended(command: AppendLog, size: int) -> None:
        signals.log_grew(command.job_id)
        await broker.publish(LOGS_TOPIC, {"job_id": command.job_id, "size": size})

    bus.subscribe(JobQueued, wake_claims)
    bus.subscribe(JobCompleted, job_finished)
    for build_event in (BuildCreated, BuildStarted, BuildCompleted):
        bus.subscribe(build_event, status_changed)
    bus.subscribe(BuildCompleted, build_finished)
    server.telemetry = telemetry_from_environment(os.environ)
    if server.telemetry.enabled:  # off: not even the subscription
        tracer = server.telemetry.build_tracer
        bus.subscribe(BuildCompleted, build_trace_handler(server.queries, bus.uow_factory, tracer))
    bus.after(AppendLog, log_appended)
    observe_events(bus, metrics.reads, metrics)
    server.metrics = metrics
    server.authenticator = Authenticator(bus.uow_factory, deps.access_tokens, deps.clock)
    database = SqlReadinessProbe(settings.resolved_database_url)
    server.readiness = ReadinessCheck(
        {"database": database, "broker": broker.ping},
        timeout=settings.readiness_timeout,
        closers=[database.close],
    )
    server.identities = SqlIdentityQueries(engine)
    await _first_admin(bus, settings)
    return server
