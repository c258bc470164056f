"""The read side over an ``InMemoryStore``: the same DTOs and order as ``SqlQueries``."""

from __future__ import annotations

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
    ScheduleView,
    SecretVariableView,
    TriggerTokenView,
)
from ferrous.domain.build import Build, Job
from ferrous.domain.errors import NotFound
from ferrous.domain.forge import effective
from ferrous.domain.project import Pipeline, Project
from ferrous.domain.schedule import Schedule
from ferrous.domain.statuses import JobStatus
from ferrous.domain.webhook_delivery import DeliveryRecord
from ferrous.infrastructure.memory.store import InMemoryStore
from ferrous.infrastructure.sql.cursor import decode_cursor, encode_cursor
from ferrous.infrastructure.sql.queries import MAX_PAGE


def _project(project: Project) -> ProjectView:
    forge, forge_api_url, forge_repo = effective(project.forge, project.repo_url)
    return ProjectView(
        id=project.id,
        name=project.name,
        repo_url=project.repo_url,
        default_branch=project.default_branch,
        created_at=project.created_at,
        credentials_kind=project.credentials.kind.value if project.credentials else "none",
        webhook_secret_set=project.webhook_secret is not None,
        forge=forge.value,
        forge_api_url=forge_api_url,
        forge_repo=forge_repo,
        forge_token_set=project.forge is not None and bool(project.forge.token),
        artifacts_expire_in=project.artifacts_expire_in,
        keep_latest_artifacts=project.keep_latest_artifacts,
    )


def _pipeline(pipeline: Pipeline) -> PipelineView:
    return PipelineView(
        id=pipeline.id,
        project_id=pipeline.project_id,
        name=pipeline.name,
        config_path=pipeline.config_path,
        enabled=pipeline.enabled,
        created_at=pipeline.created_at,
    )


def _matches(build: Build, filters: BuildFilter) -> bool:
    return (
        (filters.project_id is None or build.project_id == filters.project_id)
        and (filters.pipeline_id is None or build.pipeline_id == filters.pipeline_id)
        and (filters.status is None or build.status.value == filters.status)
        and (filters.ref is None or build.ref == filters.ref)
        and (filters.created_after is None or build.created_at >= filters.created_after)
        and (filters.created_before is None or build.created_at < filters.created_before)
    )


class InMemoryQueries:
    def __init__(self, store: InMemoryStore) -> None:
        self._store = store

    async def list_projects(self) -> list[ProjectView]:
        return [_project(p) for p in sorted(self._store.projects.values(), key=lambda p: p.name)]

    async def get_project(self, id_or_name: str) -> ProjectView:
        for project in self._store.projects.values():
            if id_or_name in (project.id, project.name):
                return _project(project)
        raise NotFound(f"no project {id_or_name!r}")

    async def list_pipelines(self, project_id: str) -> list[PipelineView]:
        found = [p for p in self._store.pipelines.values() if p.project_id == project_id]
        return [_pipeline(p) for p in sorted(found, key=lambda p: p.name)]

    async def get_pipeline(self, pipeline_id: str) -> PipelineView:
        pipeline = self._store.pipelines.get(pipeline_id)
        if pipeline is None:
            raise NotFound(f"no pipeline {pipeline_id}")
        return _pipeline(pipeline)

    def _summary(self, build: Build) -> BuildSummary:
        return BuildSummary(
            id=build.id,
            project_id=build.project_id,
            project_name=self._store.projects[build.project_id].name,
            pipeline_id=build.pipeline_id,
            pipeline_name=self._store.pipelines[build.pipeline_id].name,
            number=build.number,
            ref=build.ref,
            sha=build.sha,
            source=build.source,
            status=build.status.value,
            created_at=build.created_at,
            started_at=build.started_at,
            finished_at=build.finished_at,
        )

    async def list_builds(
        self, filters: BuildFilter, *, limit: int = 50, cursor: str | None = None
    ) -> Page[BuildSummary]:
        limit = max(1, min(limit, MAX_PAGE))
        found = [b for b in self._store.builds.values() if _matches(b, filters)]
        if cursor is not None:
            after = decode_cursor(cursor)
            found = [b for b in found if (b.created_at, b.id) < after]
        found.sort(key=lambda b: (b.created_at, b.id), reverse=True)
        items = [self._summary(b) for b in found[:limit]]
        next_cursor = None
        if len(found) > limit:
            next_cursor = encode_cursor(items[-1].created_at, items[-1].id)
        return Page(items=items, next_cursor=next_cursor)

    def _job(self, job: Job, attempts: bool) -> JobView:
        definition = job.definition
        return JobView(
            id=job.id,
            build_id=job.build_id,
            name=job.name,
            stage=definition.stage,
            stage_index=definition.stage_index,
            status=job.status.value,
            when=definition.when.value,
            needs=None if definition.needs is None else list(definition.needs),
            tags=sorted(set(definition.tags)),
            allow_failure=definition.allow_failure,
            failure_allowed=job.failure_allowed,
            attempt=job.attempt,
            agent_id=job.agent_id,
            exit_code=job.exit_code,
            failure_reason=job.failure_reason,
            queued_at=job.queued_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            log_size=len(self._store.logs.get(job.id, b"")),
            attempts=[
                AttemptView(
                    number=a.number,
                    status=a.status.value,
                    agent_id=a.agent_id,
                    exit_code=a.exit_code,
                    failure_reason=a.failure_reason,
                    started_at=a.started_at,
                    finished_at=a.finished_at,
                )
                for a in job.history
            ]
            if attempts
            else [],
            coverage=job.coverage,
        )

    async def get_build(self, build_id: str) -> BuildView:
        build = self._store.builds.get(build_id)
        if build is None:
            raise NotFound(f"no build {build_id}")
        jobs = [self._job(job, attempts=False) for job in build.jobs.values()]
        by_index: dict[str, int] = {}
        for job in jobs:
            by_index.setdefault(job.stage, job.stage_index)
        return BuildView(
            summary=self._summary(build),
            failure_reason=build.failure_reason,
            problems=[dict(p) for p in build.problems],
            variables=sorted(build.variables),
            stages=sorted(by_index, key=lambda stage: (by_index[stage], stage)),
            jobs=jobs,
            schedule_id=build.schedule_id,
        )

    async def get_job(self, job_id: str) -> JobView:
        for build in self._store.builds.values():
            for job in build.jobs.values():
                if job.id == job_id:
                    return self._job(job, attempts=True)
        raise NotFound(f"no job {job_id}")

    async def list_agents(self) -> list[AgentView]:
        running: dict[str, int] = {}
        for build in self._store.builds.values():
            for job in build.jobs.values():
                if job.status == JobStatus.RUNNING and job.agent_id is not None:
                    running[job.agent_id] = running.get(job.agent_id, 0) + 1
        return [
            AgentView(
                id=a.id,
                name=a.name,
                labels=sorted(a.labels),
                capacity=a.capacity,
                platform=dict(a.platform),
                status=a.status.value,
                embedded=a.embedded,
                created_at=a.created_at,
                last_seen_at=a.last_seen_at,
                running_jobs=running.get(a.id, 0),
            )
            for a in sorted(self._store.agents.values(), key=lambda a: (a.name, a.id))
        ]

    async def list_registration_tokens(self) -> list[RegistrationTokenView]:
        tokens = sorted(
            self._store.registration_tokens.values(),
            key=lambda t: (t.created_at, t.id),
            reverse=True,
        )
        return [
            RegistrationTokenView(
                id=t.id,
                description=t.description,
                created_at=t.created_at,
                expires_at=t.expires_at,
                revoked_at=t.revoked_at,
                max_uses=t.max_uses,
                uses=t.uses,
                last_used_at=t.last_used_at,
            )
            for t in tokens
        ]

    async def list_trigger_tokens(self, project_id: str) -> list[TriggerTokenView]:
        tokens = [t for t in self._store.trigger_tokens.values() if t.project_id == project_id]
        tokens.sort(key=lambda t: (t.created_at, t.id), reverse=True)
        names = TriggerTokenView.__dataclass_fields__
        return [TriggerTokenView(**{name: getattr(t, name) for name in names}) for t in tokens]

    def _schedule(self, schedule: Schedule) -> ScheduleView:
        return ScheduleView(
            id=schedule.id,
            project_id=schedule.project_id,
            pipeline_id=schedule.pipeline_id,
            pipeline_name=self._store.pipelines[schedule.pipeline_id].name,
            description=schedule.description,
            cron=schedule.cron,
            timezone=schedule.timezone,
            ref=schedule.ref,
            variables=dict(schedule.variables),
            active=schedule.active,
            next_run_at=schedule.next_run_at,
            last_run_at=schedule.last_run_at,
            last_build_id=schedule.last_build_id,
            created_at=schedule.created_at,
        )

    async def list_secret_variables(self, project_id: str | None) -> list[SecretVariableView]:
        found = [s for s in self._store.secret_variables.values() if s.project_id == project_id]
        names = SecretVariableView.__dataclass_fields__
        return [
            SecretVariableView(**{name: getattr(s, name) for name in names})
            for s in sorted(found, key=lambda s: s.name)
        ]

    async def list_schedules(self, project_id: str) -> list[ScheduleView]:
        found = [s for s in self._store.schedules.values() if s.project_id == project_id]
        return [self._schedule(s) for s in sorted(found, key=lambda s: (s.created_at, s.id))]

    async def get_schedule(self, schedule_id: str) -> ScheduleView:
        schedule = self._store.schedules.get(schedule_id)
        if schedule is None:
            raise NotFound(f"no schedule {schedule_id}")
        return self._schedule(schedule)

    async def list_webhook_deliveries(self, project_id: str, limit: int) -> list[DeliveryRecord]:
        found = [d for d in self._store.webhook_deliveries.values() if d.project_id == project_id]
        found.sort(key=lambda d: (d.received_at, d.id), reverse=True)
        return found[:limit]
