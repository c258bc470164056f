"""A small in-memory world behind the API: the bus, queries, logs, log feed and claim waiter.

It keeps the rules the API relies on (names unique, disabled pipelines refuse builds, only
the lease holder writes logs or completes, log appends are idempotent) and records every
command, so tests check both what the API answers and what it asked for.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ferrous.api.services import ApiServices, LogSignal
from ferrous.application import commands as c
from ferrous.application.queries import (
    AgentView,
    AttemptView,
    BuildFilter,
    BuildSummary,
    BuildView,
    JobView,
    Page,
    PipelineView,
    ProjectView,
    RegistrationTokenView,
)
from ferrous.application.use_cases.register_agent import hash_token
from ferrous.domain.errors import Conflict, InvalidCredentials, InvalidTransition, NotFound
from tests.auth import People, people

T0 = datetime(2025, 1, 31, 12, 0, tzinfo=UTC)
REGISTRATION_TOKEN = "reg-secret"
QUIET = LogSignal()
FINISHED = {"success", "failed", "canceled", "skipped"}


def make_job(build_id: str, n: int, **changes: Any) -> JobView:
    job = JobView(
        id=f"job-{build_id}-{n}",
        build_id=build_id,
        name=f"test {n}",
        stage="test",
        stage_index=0,
        status="pending",
        when="on_success",
        needs=None,
        tags=[],
        allow_failure=False,
        failure_allowed=False,
        attempt=0,
        agent_id=None,
        exit_code=None,
        failure_reason=None,
        queued_at=T0,
        started_at=None,
        finished_at=None,
    )
    return dataclasses.replace(job, **changes)


class FakeQueries:
    def __init__(self) -> None:
        self.projects: dict[str, ProjectView] = {}
        self.pipelines: dict[str, PipelineView] = {}
        self.builds: dict[str, BuildView] = {}
        self.jobs: dict[str, JobView] = {}
        self.agents: dict[str, AgentView] = {}
        self.build_filters: list[tuple[BuildFilter, int, str | None]] = []

    async def list_projects(self) -> list[ProjectView]:
        return list(self.projects.values())

    async def get_project(self, id_or_name: str) -> ProjectView:
        for project in self.projects.values():
            if id_or_name in (project.id, project.name):
                return project
        raise NotFound(f"no project {id_or_name!r}")

    async def list_pipelines(self, project_id: str) -> list[PipelineView]:
        return [p for p in self.pipelines.values() if p.project_id == project_id]

    async def get_pipeline(self, pipeline_id: str) -> PipelineView:
        if pipeline_id not in self.pipelines:
            raise NotFound(f"no pipeline {pipeline_id!r}")
        return self.pipelines[pipeline_id]

    async def list_builds(
        self, filters: BuildFilter, *, limit: int = 50, cursor: str | None = None
    ) -> Page[BuildSummary]:
        self.build_filters.append((filters, limit, cursor))
        items = [v.summary for v in reversed(self.builds.values())]
        start = int(cursor) if cursor and cursor.isdigit() else 0
        more = start + limit < len(items)
        return Page(
            items=items[start : start + limit], next_cursor=str(start + limit) if more else None
        )

    async def get_build(self, build_id: str) -> BuildView:
        if build_id not in self.builds:
            raise NotFound(f"no build {build_id!r}")
        view = self.builds[build_id]
        jobs = [self.jobs[j.id] for j in view.jobs]
        return dataclasses.replace(view, jobs=jobs)

    async def get_job(self, job_id: str) -> JobView:
        if job_id not in self.jobs:
            raise NotFound(f"no job {job_id!r}")
        return self.jobs[job_id]

    async def list_agents(self) -> list[AgentView]:
        return list(self.agents.values())

    async def list_registration_tokens(self) -> list[RegistrationTokenView]:
        return []  # the real ones are tested on the memory adapters

    # --- helpers for tests and the fake bus ----------------------------------------------

    def set_job(self, job_id: str, **changes: Any) -> JobView:
        self.jobs[job_id] = dataclasses.replace(self.jobs[job_id], **changes)
        return self.jobs[job_id]

    def set_build_status(self, build_id: str, status: str) -> None:
        view = self.builds[build_id]
        summary = dataclasses.replace(view.summary, status=status)
        self.builds[build_id] = dataclasses.replace(view, summary=summary)


class FakeLogs:
    def __init__(self) -> None:
        self.data: dict[str, bytearray] = {}

    async def append(self, job_id: str, offset: int, chunk: bytes) -> int:
        log = self.data.setdefault(job_id, bytearray())
        stored = log[offset : offset + len(chunk)]
        if offset > len(log) or chunk[: len(stored)] != stored:
            raise Conflict(f"the log has {len(log)} bytes")
        log += chunk[len(stored) :]  # a repeated chunk adds nothing
        return len(log)

    async def read(self, job_id: str, start: int = 0, end: int | None = None) -> bytes:
        return bytes(self.data.get(job_id, b"")[start:end])

    async def size(self, job_id: str) -> int:
        return len(self.data.get(job_id, b""))


class FakeSubscription:
    def __init__(self, feed: FakeFeed, job_id: str) -> None:
        self.feed, self.job_id = feed, job_id
        self.queue: asyncio.Queue[LogSignal | None] = asyncio.Queue()
        self.closed = False
        self.nexts = 0  # how often the stream asked for the next signal

    def __aiter__(self) -> AsyncIterator[LogSignal]:
        return self

    async def __anext__(self) -> LogSignal:
        self.nexts += 1
        signal = await self.queue.get()
        if signal is None:
            raise StopAsyncIteration
        return signal

    async def aclose(self) -> None:
        self.closed = True
        self.feed.subscriptions.remove(self)


class FakeFeed:
    def __init__(self) -> None:
        self.subscriptions: list[FakeSubscription] = []
        self.subscribed = asyncio.Event()

    async def subscribe(self, job_id: str) -> FakeSubscription:
        subscription = FakeSubscription(self, job_id)
        self.subscriptions.append(subscription)
        self.subscribed.set()
        return subscription

    async def waiting(self, job_id: str, times: int = 1) -> None:
        """Until a stream of ``job_id`` waits for its ``times``-th signal."""
        async with asyncio.timeout(2):
            while not any(
                s.job_id == job_id and s.nexts >= times and s.queue.empty()
                for s in self.subscriptions
            ):
                await asyncio.sleep(0.001)

    def signal(self, job_id: str, signal: LogSignal | None = QUIET) -> None:
        for subscription in self.subscriptions:
            if subscription.job_id == job_id:
                subscription.queue.put_nowait(signal)


class FakeWaiter:
    """Waiting registers at the first step, as the ClaimWaiter contract asks."""

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self.waits: list[float] = []
        self.closing = False

    def wake(self) -> None:
        self.event.set()
        self.event = asyncio.Event()

    async def wait(self, timeout: float) -> None:
        self.waits.append(timeout)
        event = self.event
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)


@dataclass
class Obj:
    """What the bus returns: only the attributes the API reads."""

    id: str
    status: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class FakeWorld:
    queries: FakeQueries = field(default_factory=FakeQueries)
    logs: FakeLogs = field(default_factory=FakeLogs)
    feed: FakeFeed = field(default_factory=FakeFeed)
    waiter: FakeWaiter = field(default_factory=FakeWaiter)
    commands: list[c.Command] = field(default_factory=list)
    claimable: list[dict[str, Any]] = field(default_factory=list)
    tokens: dict[str, str] = field(default_factory=dict)  # token hash -> agent id
    registration_tokens: set[str] = field(default_factory=set)  # admin-created, unlimited
    lookups: int = 0
    counter: int = 0
    #: admin, developer and viewer with their tokens; ``people.headers()`` is the admin's
    people: People = field(default_factory=people)

    def services(self, **changes: Any) -> ApiServices:
        base = ApiServices(
            bus=self,
            queries=self.queries,
            logs_reader=self.logs,
            log_events=self.feed,
            claim_waiter=self.waiter,
            agent_by_token_hash=self.agent_by_token_hash,
            agent_registration_token=REGISTRATION_TOKEN,
            claim_timeout=5.0,
            authenticator=self.people.authenticator,
        )
        return dataclasses.replace(base, **changes)

    async def agent_by_token_hash(self, token_hash: str) -> str | None:
        self.lookups += 1
        return self.tokens.get(token_hash)

    def new_id(self, kind: str) -> str:
        self.counter += 1
        return f"{kind}-{self.counter}"

    # --- the bus ---------------------------------------------------------------------------

    async def handle(self, command: c.Command) -> Any:
        self.commands.append(command)
        name = re.sub(r"(?<!^)(?=[A-Z])", "_", type(command).__name__).lower()
        result = getattr(self, name)(command)
        return await result if inspect.isawaitable(result) else result

    def create_project(self, cmd: c.CreateProject) -> Obj:
        q = self.queries
        if any(p.name == cmd.name for p in q.projects.values()):
            raise Conflict(f"a project named {cmd.name!r} exists already")
        project = ProjectView(
            id=self.new_id("project"),
            name=cmd.name,
            repo_url=cmd.repo_url,
            default_branch=cmd.default_branch,
            created_at=T0,
            credentials_kind=cmd.credentials.kind.value if cmd.credentials else "none",
        )
        q.projects[project.id] = project
        self.create_pipeline(c.CreatePipeline(project_id=project.id, name="default"))
        return Obj(project.id)

    def update_project(self, cmd: c.UpdateProject) -> Obj:
        project = self.queries.projects[cmd.project_id]
        changes: dict[str, Any] = {}
        if cmd.repo_url is not None:
            changes["repo_url"] = cmd.repo_url
        if cmd.default_branch is not None:
            changes["default_branch"] = cmd.default_branch
        if cmd.credentials is not None:
            changes["credentials_kind"] = cmd.credentials.kind.value
        self.queries.projects[project.id] = dataclasses.replace(project, **changes)
        return Obj(project.id)

    def create_pipeline(self, cmd: c.CreatePipeline) -> PipelineView:
        q = self.queries
        if any(p.project_id == cmd.project_id and p.name == cmd.name for p in q.pipelines.values()):
            raise Conflict(f"the project has a pipeline named {cmd.name!r} already")
        pipeline = PipelineView(
            id=self.new_id("pipeline"),
            project_id=cmd.project_id,
            name=cmd.name,
            config_path=cmd.config_path,
            enabled=True,
            created_at=T0 + timedelta(seconds=1),
        )
        q.pipelines[pipeline.id] = pipeline
        return pipeline

    def enable_pipeline(self, cmd: c.EnablePipeline) -> PipelineView:
        return self._set_enabled(cmd.pipeline_id, True)

    def disable_pipeline(self, cmd: c.DisablePipeline) -> PipelineView:
        return self._set_enabled(cmd.pipeline_id, False)

    def _set_enabled(self, pipeline_id: str, enabled: bool) -> PipelineView:
        if pipeline_id not in self.queries.pipelines:
            raise NotFound(f"no pipeline {pipeline_id!r}")
        pipeline = dataclasses.replace(self.queries.pipelines[pipeline_id], enabled=enabled)
        self.queries.pipelines[pipeline_id] = pipeline
        return pipeline

    def trigger_build(self, cmd: c.TriggerBuild) -> Obj:
        q = self.queries
        pipeline = q.pipelines.get(cmd.pipeline_id)
        if pipeline is None:
            raise NotFound(f"no pipeline {cmd.pipeline_id!r}")
        if not pipeline.enabled:
            raise Conflict(f"pipeline {pipeline.name!r} is disabled")
        project = q.projects[pipeline.project_id]
        build_id = self.new_id("build")
        summary = BuildSummary(
            id=build_id,
            project_id=project.id,
            project_name=project.name,
            pipeline_id=pipeline.id,
            pipeline_name=pipeline.name,
            number=len(q.builds) + 1,
            ref=cmd.ref or project.default_branch,
            sha=cmd.sha or "a" * 40,
            source=cmd.source,
            status="pending",
            created_at=T0,
            started_at=None,
            finished_at=None,
        )
        job = make_job(build_id, 1)
        q.jobs[job.id] = job
        q.builds[build_id] = BuildView(
            summary=summary,
            failure_reason=None,
            problems=[],
            variables=sorted(cmd.variables),
            stages=["test"],
            jobs=[job],
        )
        return Obj(build_id)

    def cancel_build(self, cmd: c.CancelBuild) -> Obj:
        view = self.queries.builds.get(cmd.build_id)
        if view is None:
            raise NotFound(f"no build {cmd.build_id!r}")
        if view.summary.status in FINISHED:
            raise InvalidTransition(f"the build is {view.summary.status} already")
        self.queries.set_build_status(cmd.build_id, "canceled")
        return Obj(cmd.build_id)

    def retry_build(self, cmd: c.RetryBuild) -> Obj:
        if cmd.build_id not in self.queries.builds:
            raise NotFound(f"no build {cmd.build_id!r}")
        self.queries.set_build_status(cmd.build_id, "pending")
        return Obj(cmd.build_id)

    def retry_job(self, cmd: c.RetryJob) -> Obj:
        job = self.queries.jobs.get(cmd.job_id)
        if job is None:
            raise NotFound(f"no job {cmd.job_id!r}")
        if job.status not in FINISHED:
            raise InvalidTransition(f"a {job.status} job cannot be retried")
        self.queries.set_job(job.id, status="pending", attempt=job.attempt + 1)
        return Obj(job.id)

    def play_job(self, cmd: c.PlayJob) -> Obj:
        job = self.queries.jobs.get(cmd.job_id)
        if job is None:
            raise NotFound(f"no job {cmd.job_id!r}")
        if job.status != "manual":
            raise InvalidTransition("only a manual job can be played")
        self.queries.set_job(job.id, status="pending")
        return Obj(job.id)

    def register_agent(self, cmd: c.RegisterAgent) -> tuple[Obj, str]:
        if cmd.registration_token is not None and (
            cmd.registration_token not in self.registration_tokens
        ):
            raise InvalidCredentials("wrong agent registration token")
        agent_id = self.new_id("agent")
        token = f"fra_token_{agent_id}"
        self.tokens[hash_token(token)] = agent_id
        self.queries.agents[agent_id] = AgentView(
            id=agent_id,
            name=cmd.name,
            labels=list(cmd.labels),
            capacity=cmd.capacity,
            platform=dict(cmd.platform),
            status="online",
            embedded=cmd.embedded,
            created_at=T0,
            last_seen_at=T0,
            running_jobs=0,
        )
        return Obj(agent_id), token

    def claim_job(self, cmd: c.ClaimJob) -> dict[str, Any] | None:
        if not self.claimable:
            return None
        payload = self.claimable.pop(0)
        if payload["job_id"] in self.queries.jobs:
            self.queries.set_job(
                payload["job_id"], status="running", agent_id=cmd.agent_id, attempt=1
            )
        return payload

    def heartbeat(self, cmd: c.Heartbeat) -> list[str]:
        return [
            job_id
            for job_id in cmd.running_job_ids
            if job_id not in self.queries.jobs
            or self.queries.jobs[job_id].agent_id != cmd.agent_id
            or self.queries.jobs[job_id].status != "running"
        ]

    def _holder_check(self, agent_id: str, job_id: str) -> JobView:
        job = self.queries.jobs.get(job_id)
        if job is None:
            raise NotFound(f"no job {job_id!r}")
        if job.agent_id != agent_id or job.status != "running":
            raise Conflict("this agent does not hold the job's lease")
        return job

    async def append_log(self, cmd: c.AppendLog) -> int:
        self._holder_check(cmd.agent_id, cmd.job_id)
        size = await self.logs.append(cmd.job_id, cmd.offset, cmd.data)
        self.queries.set_job(cmd.job_id, log_size=size)
        return size

    def complete_job(self, cmd: c.CompleteJob) -> Obj:
        job = self._holder_check(cmd.agent_id, cmd.job_id)
        status = "success" if cmd.exit_code == 0 else "failed"
        attempt = AttemptView(
            number=cmd.attempt,
            status=status,
            agent_id=cmd.agent_id,
            exit_code=cmd.exit_code,
            failure_reason=cmd.failure_reason,
            started_at=T0,
            finished_at=T0 + timedelta(seconds=3),
        )
        self.queries.set_job(
            job.id,
            status=status,
            exit_code=cmd.exit_code,
            failure_reason=cmd.failure_reason,
            attempts=[*job.attempts, attempt],
        )
        return Obj(job.id, status=status)
