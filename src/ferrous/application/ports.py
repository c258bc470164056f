"""The ports: what use cases need from the outside world, as Protocols named by role.

Adapters live in ``ferrous.infrastructure`` (SQL, brokers, git) and are chosen in
``application.bootstrap``; tests use the in-memory ones. Every method is async because the
production adapters do I/O.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, Protocol, Self

from ferrous.application.identity_ports import (
    ApiTokenRepository,
    SessionRepository,
    UserRepository,
)
from ferrous.application.notification_ports import NotificationRepository
from ferrous.application.status_ports import StatusReportRepository
from ferrous.domain.agent import Agent
from ferrous.domain.build import Build
from ferrous.domain.events import Event
from ferrous.domain.project import Pipeline, Project
from ferrous.domain.registration_token import RegistrationToken
from ferrous.domain.schedule import Schedule
from ferrous.domain.secret_variable import SecretVariable
from ferrous.domain.trigger_token import TriggerToken
from ferrous.domain.webhook_delivery import DeliveryRecord


class ProjectRepository(Protocol):
    async def add(self, project: Project) -> None: ...

    async def get(self, project_id: str) -> Project:
        """Raises NotFound."""
        ...

    async def get_by_name(self, name: str) -> Project:
        """Raises NotFound."""
        ...

    async def save(self, project: Project) -> None:
        """Store a changed project (URL, default branch, credentials). Raises NotFound."""
        ...


class PipelineRepository(Protocol):
    async def add(self, pipeline: Pipeline) -> None: ...

    async def get(self, pipeline_id: str) -> Pipeline: ...

    async def get_by_name(self, project_id: str, name: str) -> Pipeline: ...

    async def list_for_project(self, project_id: str) -> list[Pipeline]: ...

    async def save(self, pipeline: Pipeline) -> None: ...

    async def allocate_number(self, pipeline_id: str) -> int:
        """The next build number of the pipeline, atomically (1, 2, 3, ...)."""
        ...


@dataclass(frozen=True, slots=True)
class JobRef:
    build_id: str
    job_id: str


@dataclass(frozen=True, slots=True)
class JobLease:
    build_id: str
    agent_id: str | None
    status: str
    attempt: int


class BuildRepository(Protocol):
    async def add(self, build: Build) -> None: ...

    async def get(self, build_id: str, *, lock: bool = False) -> Build:
        """The whole aggregate with its jobs and their attempt history. Raises NotFound.

        Jobs come without their ``spec`` (the bulk of a build's data, needed only by the
        agent that runs the job: ``job_spec``). ``lock`` holds the build until the
        transaction ends (PostgreSQL ``FOR UPDATE``, SQLite's write gate): the agent
        protocol's writers of one build then queue instead of failing on the version, which
        with a hundred agents finishing jobs of one build would retry without end.
        """
        ...

    async def save(self, build: Build) -> None:
        """Store the changed aggregate if nobody else did since it was read.

        Optimistic concurrency: the stored version must equal ``build.version``, else
        ``StaleState`` is raised (the bus retries the command); on success the version is
        incremented in the store and on the object.
        """
        ...

    async def save_started(self, build: Build, job_id: str) -> None:
        """Store a claim: ``job_id`` started on the loaded ``build``, nothing else changed.

        Unlike ``save`` it does not bump the build's version unless the build's own state
        changed (its first job starting): it writes the job's row only if that job is still
        pending at the attempt read, else ``StaleState``. So claims of jobs of one build do
        not fail each other, and a ``save`` that would overwrite a job started meanwhile
        fails instead (it writes pending jobs only if they are still pending).
        """
        ...

    async def build_of_job(self, job_id: str) -> str:
        """The id of the build a job belongs to. Raises NotFound."""
        ...

    async def job_lease(self, job_id: str) -> JobLease:
        """Who runs a job now, read without loading the build (log appends ask per chunk)."""
        ...

    async def job_leases(self, job_ids: Sequence[str]) -> dict[str, JobLease]:
        """``job_lease`` of many jobs in one query (a heartbeat lists all its jobs); jobs
        that do not exist are absent from the answer."""
        ...

    async def job_spec(self, job_id: str) -> dict[str, Any]:
        """What the agent runs for a job (the plan's JobSpec as JSON). Raises NotFound."""
        ...

    async def claimable(self, labels: frozenset[str], limit: int) -> list[JobRef]:
        """Oldest pending jobs whose tags are all among ``labels``, oldest first.

        On PostgreSQL the rows are locked ``FOR UPDATE SKIP LOCKED`` for the transaction, so
        concurrent claims on several servers take different jobs.
        """
        ...

    async def running_on(self, agent_id: str) -> list[JobRef]: ...

    async def with_due_jobs(self, now: datetime) -> list[str]:
        """Ids of builds that have a `when: delayed` job whose start time has come."""
        ...

    async def unfinished_before(
        self,
        pipeline_id: str,
        ref: str,
        number: int,
        created_after: datetime,
        limit: int,
        excluding_shas: Sequence[str] = (),
    ) -> list[str]:
        """Ids of the pipeline's builds of ``ref`` numbered below ``number``, created after
        ``created_after``, at none of ``excluding_shas``, that may still be auto-canceled
        (not finished, not waiting on a manual job); oldest first, at most ``limit``.
        Filtered here, not by the caller: loading a hundred builds per trigger to skip
        those at the same commit made triggering three times slower."""
        ...


class AgentRepository(Protocol):
    async def add(self, agent: Agent) -> None: ...

    async def get(self, agent_id: str) -> Agent: ...

    async def get_by_token_hash(self, token_hash: str) -> Agent:
        """Raises NotFound (the caller answers 401)."""
        ...

    async def save(self, agent: Agent) -> None: ...

    async def touch(self, agent_id: str, now: datetime) -> None:
        """Record that the agent was heard from, without its version: claims and heartbeats
        of one agent arrive together and must not fail each other."""
        ...

    async def silent_since(self, cutoff: datetime) -> list[Agent]:
        """Online agents not seen since ``cutoff``."""
        ...


class RegistrationTokenRepository(Protocol):
    """Agent registration tokens, looked up by the hash of the secret (never the secret)."""

    async def add(self, token: RegistrationToken) -> None: ...

    async def get(self, token_id: str) -> RegistrationToken:
        """Raises NotFound."""
        ...

    async def save(self, token: RegistrationToken) -> None:
        """Store what an admin changes (``description``, ``revoked_at``). Raises NotFound.

        The use count is not written here: only ``spend`` changes it, so a revocation
        saved from a token read earlier never undoes a registration that happened since.
        """
        ...

    async def spend(self, token_hash: str, now: datetime) -> RegistrationToken:
        """Count one use of the token with ``token_hash``, atomically; returns it afterwards.

        The use is counted only if the token is usable at ``now`` (the domain's rule), in
        one step that concurrent units of work cannot both pass for the last use: of two
        registrations racing for a ``max_uses=1`` token exactly one succeeds. Raises
        NotFound for an unknown hash and ``InvalidCredentials`` (saying why) for a token
        that is revoked, expired or used up. Rolling back the unit of work gives the use
        back.
        """
        ...


class TriggerTokenRepository(Protocol):
    """A project's pipeline trigger tokens, looked up by the hash of the secret."""

    async def add(self, token: TriggerToken) -> None:
        """Raises Conflict for an id or hash that exists already."""
        ...

    async def get(self, token_id: str) -> TriggerToken:
        """Raises NotFound."""
        ...

    async def save(self, token: TriggerToken) -> None:
        """Store what a maintainer changes (``description``, ``revoked_at``). Raises NotFound.

        ``last_used_at`` is not written here (only ``use`` stamps it), so a revocation saved
        from a token read earlier never turns back a later use.
        """
        ...

    async def use(self, token_hash: str, now: datetime) -> TriggerToken:
        """Stamp ``last_used_at`` of the token with ``token_hash`` if it is usable at ``now``;
        returns it afterwards.

        Checked and stamped in one step, so a revocation committed meanwhile refuses the
        trigger (PostgreSQL re-checks the row after waiting for it). Raises NotFound for an
        unknown hash and ``InvalidCredentials`` (saying why) for a revoked or expired token.
        """
        ...


class ScheduleRepository(Protocol):
    async def add(self, schedule: Schedule) -> None: ...

    async def get(self, schedule_id: str) -> Schedule:
        """Raises NotFound."""
        ...

    async def save(self, schedule: Schedule) -> None:
        """Store the changed schedule if nobody else did since it was read.

        A compare-and-set on ``version`` (``StaleState`` otherwise; the bus retries the
        command on fresh state): of two servers that both read a tick as due, only the
        first to commit advances ``next_run_at`` and fires it.
        """
        ...

    async def remove(self, schedule: Schedule) -> None:
        """Delete it, with the same compare-and-set as ``save``. Raises NotFound."""
        ...

    async def due(self, now: datetime, limit: int) -> list[str]:
        """Ids of active schedules whose ``next_run_at`` is at or before ``now``, earliest
        first."""
        ...

    async def next_run_at(self) -> datetime | None:
        """The earliest ``next_run_at`` of the active schedules (None: there is none)."""
        ...


class WebhookDeliveryRepository(Protocol):
    async def find(self, project_id: str, forge: str, delivery_id: str) -> DeliveryRecord | None:
        """The record of an earlier delivery with this id, if there was one."""
        ...

    async def add(self, record: DeliveryRecord) -> None:
        """Record it; ``Conflict`` if the same delivery was recorded meanwhile (a
        redelivery racing the first: the loser's transaction, with its builds, rolls back)."""
        ...


class SecretVariableRepository(Protocol):
    """Secret variables, by owner and name; ``project_id`` None names the instance's."""

    async def find(self, project_id: str | None, name: str) -> SecretVariable | None: ...

    async def list_for(self, project_id: str | None) -> list[SecretVariable]:
        """The project's own (or the instance's) variables, by name."""
        ...

    async def add(self, secret: SecretVariable) -> None:
        """Raises Conflict when the owner has a variable of that name already (a set racing
        another: the bus runs the loser again, which then replaces it)."""
        ...

    async def save(self, secret: SecretVariable) -> None:
        """Store a new sealed value and flags (``replace``). Raises NotFound."""
        ...

    async def remove(self, secret: SecretVariable) -> None:
        """Raises NotFound when it is gone already."""
        ...


class LogStore(Protocol):
    async def append(self, job_id: str, offset: int, data: bytes) -> int:
        """Append ``data`` at byte ``offset``; returns the log's length afterwards.

        Idempotent: a chunk that repeats bytes already stored (same offset, same bytes) is
        accepted once. A gap (offset past the end) or different bytes at a stored offset
        raise ``Conflict`` with the current length in the message.
        """
        ...

    async def read(self, job_id: str, start: int = 0, end: int | None = None) -> bytes: ...

    async def size(self, job_id: str) -> int: ...


class StaleState(Exception):
    """Someone else changed the aggregate since it was read; try the command again."""


class UnitOfWork(Protocol):
    """One transaction: repositories share it, ``commit`` stores state and events together.

    Events recorded by aggregates that were added or saved through the repositories are
    written to the outbox in the same transaction by ``commit`` and then available from
    ``committed_events`` for in-process dispatch.
    """

    @property
    def projects(self) -> ProjectRepository: ...

    @property
    def pipelines(self) -> PipelineRepository: ...

    @property
    def builds(self) -> BuildRepository: ...

    @property
    def agents(self) -> AgentRepository: ...

    @property
    def registration_tokens(self) -> RegistrationTokenRepository: ...

    @property
    def trigger_tokens(self) -> TriggerTokenRepository: ...

    @property
    def schedules(self) -> ScheduleRepository: ...

    @property
    def webhook_deliveries(self) -> WebhookDeliveryRepository: ...

    @property
    def secret_variables(self) -> SecretVariableRepository: ...

    @property
    def status_reports(self) -> StatusReportRepository: ...

    @property
    def notifications(self) -> NotificationRepository: ...

    @property
    def users(self) -> UserRepository: ...

    @property
    def api_tokens(self) -> ApiTokenRepository: ...

    @property
    def sessions(self) -> SessionRepository: ...

    @property
    def logs(self) -> LogStore: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Roll back unless committed."""
        ...

    async def commit(self) -> None: ...

    def committed_events(self) -> list[Event]: ...


class Broker(Protocol):
    """Messages between server processes: wake-ups, events, live log chunks.

    Best effort: the database stays the source of truth, so a lost message only delays
    something that polling would also find.
    """

    async def publish(self, topic: str, message: dict[str, Any], *, required: bool = False) -> None:
        """Send ``message`` to the subscribers of ``topic``.

        By default a message the broker cannot take (an outage) is logged and dropped. With
        ``required=True`` (the outbox relay) that raises ``BrokerUnavailable`` instead, so
        the caller can keep the message and try again later.
        """
        ...

    def subscribe(
        self, topic: str, *, on_resume: Callable[[], None] | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """The messages published on ``topic`` from now on, until ``close()``.

        A network broker's subscription that is lost reconnects by itself, and what was
        published meanwhile is gone: once it is back, ``on_resume()`` is called, for the
        subscriber to look in the database for what those messages would have said.
        """
        ...

    async def ping(self) -> None:
        """Return when the broker answers (readiness); raise when it does not."""
        ...

    async def close(self) -> None: ...


class SecretBox(Protocol):
    """Seals secrets kept at rest (repository credentials, secret variables).

    ``encrypt`` returns printable text to store; ``decrypt`` gives the bytes back and raises
    a ``FerrousError`` for text it cannot open (another key, tampering). ``context`` names
    the owner (``project:<id>:...``): a sealed value copied to another owner does not open.
    Pure CPU: not async.
    """

    def encrypt(self, plaintext: bytes, *, context: bytes = b"") -> str: ...

    def decrypt(self, sealed: str, *, context: bytes = b"") -> bytes: ...


class Clock(Protocol):
    def now(self) -> datetime: ...


class Leadership(Protocol):
    """One held singleton lock, as returned by ``LeaderLock.try_acquire``.

    Call order: ``lost()`` may be awaited (once, by one task) while the holder works;
    ``release()`` is called exactly once at the end, after ``lost()`` has returned or been
    cancelled. ``lost()`` returns when the lock can no longer be vouched for (its
    connection died, was terminated or stopped answering the periodic check): the database
    may already have given the lock to another server, so the holder must stop the singleton
    work at once. ``release()`` never raises; it is safe after a loss.
    """

    async def lost(self) -> None: ...

    async def release(self) -> None: ...


class LeaderLock(Protocol):
    """Named locks that make work run on exactly one server of a cluster (a singleton).

    ``try_acquire`` never waits for the lock: it answers a ``Leadership`` when this process
    now holds ``name`` and None when someone else does (callers retry every second or two).
    A name is held at most once per ``LeaderLock`` at a time. ``close()`` releases whatever
    is still held and ends the adapter; call it last.
    """

    async def try_acquire(self, name: str) -> Leadership | None:
        """Raises StorageError when the database cannot be reached."""
        ...

    async def close(self) -> None: ...
