"""In-memory repositories and log store, over one unit of work's ``Staged`` changes."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ferrous.application.ports import JobLease, JobRef, StaleState
from ferrous.domain.agent import Agent, AgentStatus
from ferrous.domain.build import Build, Job
from ferrous.domain.errors import Conflict, NotFound
from ferrous.domain.project import Pipeline, Project
from ferrous.domain.statuses import BuildStatus, JobStatus
from ferrous.infrastructure.memory.store import append_bytes, detached

if TYPE_CHECKING:
    from ferrous.infrastructure.memory.unit_of_work import Staged


class InMemoryProjectRepository:
    def __init__(self, staged: Staged) -> None:
        self._staged = staged

    def _all(self) -> dict[str, Project]:
        return {**self._staged.store.projects, **self._staged.projects}

    async def add(self, project: Project) -> None:
        if any(p.id == project.id or p.name == project.name for p in self._all().values()):
            raise Conflict(f"a project named {project.name!r} exists already")
        self._staged.projects[project.id] = detached(project)
        self._staged.base_versions["project", project.id] = None
        self._staged.track(project)

    async def get(self, project_id: str) -> Project:
        project = self._all().get(project_id)
        if project is None:
            raise NotFound(f"no project {project_id}")
        return detached(project)

    async def get_by_name(self, name: str) -> Project:
        for project in self._all().values():
            if project.name == name:
                return detached(project)
        raise NotFound(f"no project named {name!r}")

    async def save(self, project: Project) -> None:
        if project.id not in self._all():
            raise NotFound(f"no project {project.id}")
        self._staged.projects[project.id] = detached(project)
        self._staged.track(project)


class InMemoryPipelineRepository:
    def __init__(self, staged: Staged) -> None:
        self._staged = staged

    def _all(self) -> dict[str, Pipeline]:
        return {**self._staged.store.pipelines, **self._staged.pipelines}

    async def add(self, pipeline: Pipeline) -> None:
        staged = self._staged
        if pipeline.project_id not in {**staged.store.projects, **staged.projects}:
            raise Conflict(f"no project {pipeline.project_id} for pipeline {pipeline.name!r}")
        for other in self._all().values():
            if other.id == pipeline.id or (
                other.project_id == pipeline.project_id and other.name == pipeline.name
            ):
                raise Conflict(f"the project has a pipeline named {pipeline.name!r} already")
        staged.pipelines[pipeline.id] = detached(pipeline)
        staged.base_versions["pipeline", pipeline.id] = None
        staged.track(pipeline)

    async def get(self, pipeline_id: str) -> Pipeline:
        pipeline = self._all().get(pipeline_id)
        if pipeline is None:
            raise NotFound(f"no pipeline {pipeline_id}")
        return detached(pipeline)

    async def get_by_name(self, project_id: str, name: str) -> Pipeline:
        for pipeline in self._all().values():
            if pipeline.project_id == project_id and pipeline.name == name:
                return detached(pipeline)
        raise NotFound(f"project {project_id} has no pipeline named {name!r}")

    async def list_for_project(self, project_id: str) -> list[Pipeline]:
        found = [p for p in self._all().values() if p.project_id == project_id]
        return [detached(p) for p in sorted(found, key=lambda p: p.name)]

    async def save(self, pipeline: Pipeline) -> None:
        if pipeline.id not in self._all():
            raise NotFound(f"no pipeline {pipeline.id}")
        self._staged.pipelines[pipeline.id] = detached(pipeline)
        self._staged.track(pipeline)

    async def allocate_number(self, pipeline_id: str) -> int:
        if pipeline_id not in self._all():
            raise NotFound(f"no pipeline {pipeline_id}")
        numbers = self._staged.store.next_numbers
        number = numbers.get(pipeline_id, 1)
        numbers[pipeline_id] = number + 1
        return number


class InMemoryBuildRepository:
    def __init__(self, staged: Staged, owner: object) -> None:
        self._staged = staged
        self._owner = owner  # holds the claimed jobs' locks

    def _builds(self) -> Iterator[Build]:
        staged = self._staged
        for build_id in staged.build_ids():
            build = staged.build(build_id)
            if build is not None:
                yield build

    def _jobs(self) -> Iterator[tuple[Build, int, Job]]:
        for build in self._builds():
            for position, job in enumerate(build.jobs.values()):
                yield build, position, job

    def _job(self, job_id: str) -> tuple[Build, Job]:
        for build, _, job in self._jobs():
            if job.id == job_id:
                return build, job
        raise NotFound(f"no job {job_id}")

    async def add(self, build: Build) -> None:
        staged = self._staged
        if staged.build(build.id) is not None:
            raise Conflict(f"build {build.id} exists already")
        if build.project_id not in {**staged.store.projects, **staged.projects}:
            raise Conflict(f"no project {build.project_id} for build {build.id}")
        pipeline = {**staged.store.pipelines, **staged.pipelines}.get(build.pipeline_id)
        if pipeline is None:
            raise Conflict(f"no pipeline {build.pipeline_id} for build {build.id}")
        if any(
            b.pipeline_id == build.pipeline_id and b.number == build.number for b in self._builds()
        ):
            raise Conflict(f"the pipeline has a build number {build.number} already")
        staged.builds[build.id] = detached(build)
        staged.base_versions["build", build.id] = None
        staged.track(build)

    async def get(self, build_id: str, *, lock: bool = False) -> Build:
        """``lock`` changes nothing here: one event loop, and commits check versions."""
        build = self._staged.build(build_id)
        if build is None:
            raise NotFound(f"no build {build_id}")
        loaded = detached(build)
        for job in loaded.jobs.values():
            job.spec = None  # as the database adapter: ``job_spec`` reads it
        return loaded

    async def save(self, build: Build) -> None:
        staged = self._staged
        current = staged.build(build.id)
        if current is None:
            raise NotFound(f"no build {build.id}")
        if current.version != build.version:
            raise StaleState(
                f"build {build.id} is at version {current.version}, "
                f"this change was made at {build.version}"
            )
        staged.base_versions.setdefault(("build", build.id), build.version)
        build.version += 1
        stored = detached(build)
        for name, job in stored.jobs.items():
            if job.spec is None and name in current.jobs:
                job.spec = current.jobs[name].spec  # loaded without it; it never changes
        staged.builds[build.id] = stored
        staged.track(build)

    async def save_started(self, build: Build, job_id: str) -> None:
        """The whole build under its version: one event loop, claims hardly ever collide."""
        await self.save(build)

    async def build_of_job(self, job_id: str) -> str:
        return self._job(job_id)[0].id

    async def job_lease(self, job_id: str) -> JobLease:
        build, job = self._job(job_id)
        return JobLease(
            build_id=build.id, agent_id=job.agent_id, status=job.status.value, attempt=job.attempt
        )

    async def job_leases(self, job_ids: Sequence[str]) -> dict[str, JobLease]:
        wanted = set(job_ids)
        return {
            job.id: JobLease(
                build_id=build.id,
                agent_id=job.agent_id,
                status=job.status.value,
                attempt=job.attempt,
            )
            for build, _, job in self._jobs()
            if job.id in wanted
        }

    async def job_spec(self, job_id: str) -> dict[str, Any]:
        spec = self._job(job_id)[1].spec
        if spec is None:
            raise NotFound(f"job {job_id} has no spec")
        return dict(spec)

    async def claimable(self, labels: frozenset[str], limit: int) -> list[JobRef]:
        locked = self._staged.store.locked_jobs
        candidates = sorted(
            (job.queued_at, build.id, position, job.id)
            for build, position, job in self._jobs()
            if job.status == JobStatus.PENDING
            and job.queued_at is not None
            and set(job.definition.tags) <= labels
            and locked.get(job.id, self._owner) is self._owner
        )
        refs = []
        for _, build_id, _, job_id in candidates[: max(limit, 0)]:
            locked[job_id] = self._owner
            refs.append(JobRef(build_id=build_id, job_id=job_id))
        return refs

    async def running_on(self, agent_id: str) -> list[JobRef]:
        running = sorted(
            (job.started_at, job.id, build.id)
            for build, _, job in self._jobs()
            if job.agent_id == agent_id
            and job.status == JobStatus.RUNNING
            and job.started_at is not None
        )
        return [JobRef(build_id=build_id, job_id=job_id) for _, job_id, build_id in running]

    async def with_due_jobs(self, now: datetime) -> list[str]:
        due: dict[str, datetime] = {}
        for build, _, job in self._jobs():
            when = job.scheduled_for
            if job.status == JobStatus.SCHEDULED and when is not None and when <= now:
                due[build.id] = min(when, due.get(build.id, when))
        return sorted(due, key=lambda build_id: (due[build_id], build_id))

    async def unfinished_before(
        self,
        pipeline_id: str,
        ref: str,
        number: int,
        created_after: datetime,
        limit: int,
        excluding_shas: Sequence[str] = (),
    ) -> list[str]:
        found = sorted(
            (build.number, build.id)
            for build in self._builds()
            if build.pipeline_id == pipeline_id
            and build.ref == ref
            and build.sha not in excluding_shas
            and build.number < number
            and build.created_at > created_after
            and not build.status.is_finished
            and build.status != BuildStatus.MANUAL
        )
        return [build_id for _, build_id in found[: max(limit, 0)]]


class InMemoryAgentRepository:
    def __init__(self, staged: Staged) -> None:
        self._staged = staged

    def _all(self) -> dict[str, Agent]:
        return {**self._staged.store.agents, **self._staged.agents}

    async def add(self, agent: Agent) -> None:
        if any(a.id == agent.id or a.token_hash == agent.token_hash for a in self._all().values()):
            raise Conflict(f"agent {agent.id} or its token exists already")
        self._staged.agents[agent.id] = detached(agent)
        self._staged.base_versions["agent", agent.id] = None
        self._staged.track(agent)

    async def get(self, agent_id: str) -> Agent:
        agent = self._all().get(agent_id)
        if agent is None:
            raise NotFound(f"no agent {agent_id}")
        return detached(agent)

    async def get_by_token_hash(self, token_hash: str) -> Agent:
        for agent in self._all().values():
            if agent.token_hash == token_hash:
                return detached(agent)
        raise NotFound("no agent has this token")

    async def save(self, agent: Agent) -> None:
        current = self._all().get(agent.id)
        if current is None:
            raise NotFound(f"no agent {agent.id}")
        if current.version != agent.version:
            raise StaleState(
                f"agent {agent.id} is at version {current.version}, not {agent.version}"
            )
        self._staged.base_versions.setdefault(("agent", agent.id), agent.version)
        agent.version += 1
        self._staged.agents[agent.id] = detached(agent)
        self._staged.track(agent)

    async def touch(self, agent_id: str, now: datetime) -> None:
        # applied at commit to whatever is stored then, without a new version: a claim and
        # a heartbeat of one agent must not fail each other
        self._staged.touches[agent_id] = now

    async def silent_since(self, cutoff: datetime) -> list[Agent]:
        silent = [
            a
            for a in self._all().values()
            if a.status == AgentStatus.ONLINE and a.last_seen_at < cutoff
        ]
        return [detached(a) for a in sorted(silent, key=lambda a: (a.last_seen_at, a.id))]


class InMemoryLogStore:
    def __init__(self, staged: Staged) -> None:
        self._staged = staged

    async def append(self, job_id: str, offset: int, data: bytes) -> int:
        log = append_bytes(self._staged.log(job_id), job_id, offset, bytes(data))
        self._staged.logs.setdefault(job_id, []).append((offset, bytes(data)))
        return len(log)

    async def read(self, job_id: str, start: int = 0, end: int | None = None) -> bytes:
        return self._staged.log(job_id)[max(start, 0) : end]

    async def size(self, job_id: str) -> int:
        return len(self._staged.log(job_id))
