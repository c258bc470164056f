"""The read side on SQL: plain SELECTs into DTOs, never aggregates.

``SqlQueries(engine)`` may get a read replica's engine. A listing of builds is one query
(joined with project and pipeline names), walked newest first with a keyset cursor on
(created_at, id) that rides the ``ix_builds_*_created_at_id`` indexes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, Select, and_, bindparam, func, literal, or_, select, tuple_
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

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
from ferrous.domain.errors import NotFound
from ferrous.domain.forge import effective
from ferrous.domain.repo_credentials import SealedCredentials
from ferrous.domain.statuses import JobStatus
from ferrous.domain.webhook_delivery import DeliveryRecord
from ferrous.infrastructure.sql.cursor import decode_cursor, encode_cursor
from ferrous.infrastructure.sql.project_repository import forge_of_row
from ferrous.infrastructure.sql.schedule_queries import (
    get_schedule_statement,
    list_schedules_statement,
    schedule_view,
)
from ferrous.infrastructure.sql.schema import (
    agents,
    builds,
    job_attempts,
    job_logs,
    jobs,
    log_chunks,
    pipelines,
    projects,
    registration_tokens,
    secret_variables,
    trigger_tokens,
    webhook_deliveries,
)
from ferrous.infrastructure.sql.session import raise_storage_error
from ferrous.infrastructure.sql.types import UtcDateTime
from ferrous.infrastructure.sql.webhook_delivery_repository import delivery_record

MAX_PAGE = 500

_SUMMARY = (
    select(
        builds.c.id,
        builds.c.project_id,
        projects.c.name.label("project_name"),
        builds.c.pipeline_id,
        pipelines.c.name.label("pipeline_name"),
        builds.c.number,
        builds.c.ref,
        builds.c.sha,
        builds.c.source,
        builds.c.status,
        builds.c.created_at,
        builds.c.started_at,
        builds.c.finished_at,
    )
    .join(projects, projects.c.id == builds.c.project_id)
    .join(pipelines, pipelines.c.id == builds.c.pipeline_id)
)
_DETAIL = _SUMMARY.add_columns(
    builds.c.failure_reason, builds.c.problems, builds.c.variables, builds.c.schedule_id
).where(builds.c.id == bindparam("build_id"))
# a log's size is the end of its last chunk: one backward index probe per job; else what
# its archive holds (chunks left after an archive all lie past it: see log_archive_index.py)
_LOG_SIZE = func.coalesce(
    select(log_chunks.c.offset + func.length(log_chunks.c.data))
    .where(log_chunks.c.job_id == jobs.c.id)
    .order_by(log_chunks.c.offset.desc())
    .limit(1)
    .scalar_subquery(),
    select(job_logs.c.size).where(job_logs.c.job_id == jobs.c.id).scalar_subquery(),
    0,
).label("log_size")
_JOB_COLUMNS = (
    _LOG_SIZE,
    jobs.c.id,
    jobs.c.build_id,
    jobs.c.name,
    jobs.c.stage,
    jobs.c.stage_index,
    jobs.c.status,
    jobs.c.definition,
    jobs.c.tags,
    jobs.c.failure_allowed,
    jobs.c.attempt,
    jobs.c.agent_id,
    jobs.c.exit_code,
    jobs.c.failure_reason,
    jobs.c.queued_at,
    jobs.c.started_at,
    jobs.c.finished_at,
    jobs.c.coverage,
)
_BUILD_JOBS = (
    select(*_JOB_COLUMNS).where(jobs.c.build_id == bindparam("build_id")).order_by(jobs.c.position)
)
_JOB = select(*_JOB_COLUMNS).where(jobs.c.id == bindparam("job_id"))
_ATTEMPTS = (
    select(job_attempts)
    .where(job_attempts.c.job_id == bindparam("job_id"))
    .order_by(job_attempts.c.number)
)
_running = (
    select(jobs.c.agent_id, func.count().label("running"))
    .where(jobs.c.status == JobStatus.RUNNING.value, jobs.c.agent_id.is_not(None))
    .group_by(jobs.c.agent_id)
    .subquery()
)
_AGENTS = (
    select(agents, func.coalesce(_running.c.running, 0).label("running_jobs"))
    .outerjoin(_running, _running.c.agent_id == agents.c.id)
    .order_by(agents.c.name, agents.c.id)
)

# the columns of the view, by name: never the token's hash
_REGISTRATION_TOKENS = select(
    *(registration_tokens.c[name] for name in RegistrationTokenView.__dataclass_fields__)
).order_by(registration_tokens.c.created_at.desc(), registration_tokens.c.id.desc())
_TRIGGER_TOKENS = (
    select(*(trigger_tokens.c[name] for name in TriggerTokenView.__dataclass_fields__))
    .where(trigger_tokens.c.project_id == bindparam("project_id"))
    .order_by(trigger_tokens.c.created_at.desc(), trigger_tokens.c.id.desc())
)


def _project(row: Row[Any]) -> ProjectView:
    forge, forge_api_url, forge_repo = effective(forge_of_row(row), row.repo_url)
    return ProjectView(
        id=row.id,
        name=row.name,
        repo_url=row.repo_url,
        default_branch=row.default_branch,
        created_at=row.created_at,
        credentials_kind=(
            SealedCredentials.from_text(row.credentials).kind.value if row.credentials else "none"
        ),
        webhook_secret_set=row.webhook_secret is not None,
        forge=forge.value,
        forge_api_url=forge_api_url,
        forge_repo=forge_repo,
        forge_token_set=bool(row.forge_token),
        artifacts_expire_in=row.artifacts_expire_in,
        keep_latest_artifacts=row.keep_latest_artifacts,
    )


def _pipeline(row: Row[Any]) -> PipelineView:
    return PipelineView(
        id=row.id,
        project_id=row.project_id,
        name=row.name,
        config_path=row.config_path,
        enabled=row.enabled,
        created_at=row.created_at,
    )


#: ``_SUMMARY``'s columns, in order: rows are read by position (a ``Row`` attribute lookup
#: costs ~0.3 µs, and the build listing reads 13 of them for each of up to 200 rows).
_SUMMARY_FIELDS = tuple(str(column.key) for column in _SUMMARY.selected_columns)


def _summary(row: Row[Any]) -> BuildSummary:
    # _DETAIL's rows carry more columns after these: zip stops at the summary's
    return BuildSummary(**dict(zip(_SUMMARY_FIELDS, row, strict=False)))


def _job(row: Row[Any], attempts: list[AttemptView] | None = None) -> JobView:
    definition = row.definition
    needs = definition.get("needs")
    return JobView(
        id=row.id,
        build_id=row.build_id,
        name=row.name,
        stage=row.stage,
        stage_index=row.stage_index,
        status=row.status,
        when=definition["when"],
        needs=None if needs is None else list(needs),
        tags=list(row.tags),
        allow_failure=definition["allow_failure"],
        failure_allowed=row.failure_allowed,
        attempt=row.attempt,
        agent_id=row.agent_id,
        exit_code=row.exit_code,
        failure_reason=row.failure_reason,
        queued_at=row.queued_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        log_size=int(row.log_size),
        attempts=attempts or [],
        coverage=row.coverage,
    )


def _attempt(row: Row[Any]) -> AttemptView:
    return AttemptView(
        number=row.number,
        status=row.status,
        agent_id=row.agent_id,
        exit_code=row.exit_code,
        failure_reason=row.failure_reason,
        started_at=row.started_at,
        finished_at=row.finished_at,
    )


def _stages(job_views: Sequence[JobView]) -> list[str]:
    by_index: dict[str, int] = {}
    for job in job_views:
        by_index.setdefault(job.stage, job.stage_index)
    return sorted(by_index, key=lambda stage: (by_index[stage], stage))


def _filtered(statement: Select[Any], filters: BuildFilter) -> Select[Any]:
    conditions = []
    if filters.project_id is not None:
        conditions.append(builds.c.project_id == filters.project_id)
    if filters.pipeline_id is not None:
        conditions.append(builds.c.pipeline_id == filters.pipeline_id)
    if filters.status is not None:
        conditions.append(builds.c.status == filters.status)
    if filters.ref is not None:
        conditions.append(builds.c.ref == filters.ref)
    if filters.created_after is not None:
        conditions.append(builds.c.created_at >= filters.created_after)
    if filters.created_before is not None:
        conditions.append(builds.c.created_at < filters.created_before)
    return statement.where(and_(*conditions)) if conditions else statement


class SqlQueries:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def _rows(self, statement: Any, params: dict[str, Any] | None = None) -> list[Any]:
        try:
            async with self._engine.connect() as conn:
                return list((await conn.execute(statement, params)).all())
        except SQLAlchemyError as exc:
            raise_storage_error(exc)

    async def _many(self, *queries: tuple[Any, dict[str, Any] | None]) -> list[list[Any]]:
        """Several SELECTs on one connection and one snapshot."""
        try:
            async with self._engine.connect() as conn:
                return [list((await conn.execute(s, p)).all()) for s, p in queries]
        except SQLAlchemyError as exc:
            raise_storage_error(exc)

    async def list_projects(self) -> list[ProjectView]:
        rows = await self._rows(select(projects).order_by(projects.c.name))
        return [_project(row) for row in rows]

    async def get_project(self, id_or_name: str) -> ProjectView:
        rows = await self._rows(
            select(projects).where(or_(projects.c.id == id_or_name, projects.c.name == id_or_name))
        )
        if not rows:
            raise NotFound(f"no project {id_or_name!r}")
        return _project(rows[0])

    async def list_pipelines(self, project_id: str) -> list[PipelineView]:
        rows = await self._rows(
            select(pipelines).where(pipelines.c.project_id == project_id).order_by(pipelines.c.name)
        )
        return [_pipeline(row) for row in rows]

    async def get_pipeline(self, pipeline_id: str) -> PipelineView:
        rows = await self._rows(select(pipelines).where(pipelines.c.id == pipeline_id))
        if not rows:
            raise NotFound(f"no pipeline {pipeline_id}")
        return _pipeline(rows[0])

    async def list_builds(
        self, filters: BuildFilter, *, limit: int = 50, cursor: str | None = None
    ) -> Page[BuildSummary]:
        limit = max(1, min(limit, MAX_PAGE))
        statement = _filtered(_SUMMARY, filters)
        if cursor is not None:
            created_at, build_id = decode_cursor(cursor)
            statement = statement.where(
                tuple_(builds.c.created_at, builds.c.id)
                < tuple_(literal(created_at, UtcDateTime()), literal(build_id, builds.c.id.type))
            )
        statement = statement.order_by(builds.c.created_at.desc(), builds.c.id.desc()).limit(
            limit + 1
        )
        rows = await self._rows(statement)
        items = [_summary(row) for row in rows[:limit]]
        next_cursor = None
        if len(rows) > limit:
            last = items[-1]
            next_cursor = encode_cursor(last.created_at, last.id)
        return Page(items=items, next_cursor=next_cursor)

    async def get_build(self, build_id: str) -> BuildView:
        params = {"build_id": build_id}
        detail_rows, job_rows = await self._many((_DETAIL, params), (_BUILD_JOBS, params))
        if not detail_rows:
            raise NotFound(f"no build {build_id}")
        job_views = [_job(row) for row in job_rows]
        detail = detail_rows[0]
        return BuildView(
            summary=_summary(detail),
            failure_reason=detail.failure_reason,
            problems=list(detail.problems),
            variables=sorted(detail.variables),
            stages=_stages(job_views),
            jobs=job_views,
            schedule_id=detail.schedule_id,
        )

    async def get_job(self, job_id: str) -> JobView:
        params = {"job_id": job_id}
        job_rows, attempt_rows = await self._many((_JOB, params), (_ATTEMPTS, params))
        if not job_rows:
            raise NotFound(f"no job {job_id}")
        return _job(job_rows[0], [_attempt(row) for row in attempt_rows])

    async def list_agents(self) -> list[AgentView]:
        rows = await self._rows(_AGENTS)
        return [
            AgentView(
                id=row.id,
                name=row.name,
                labels=sorted(row.labels),
                capacity=row.capacity,
                platform=row.platform,
                status=row.status,
                embedded=row.embedded,
                created_at=row.created_at,
                last_seen_at=row.last_seen_at,
                running_jobs=int(row.running_jobs),
            )
            for row in rows
        ]

    async def list_registration_tokens(self) -> list[RegistrationTokenView]:
        rows = await self._rows(_REGISTRATION_TOKENS)
        return [RegistrationTokenView(**row._asdict()) for row in rows]

    async def list_trigger_tokens(self, project_id: str) -> list[TriggerTokenView]:
        rows = await self._rows(_TRIGGER_TOKENS, {"project_id": project_id})
        return [TriggerTokenView(**row._asdict()) for row in rows]

    async def list_secret_variables(self, project_id: str | None) -> list[SecretVariableView]:
        t = secret_variables
        owner = t.c.project_id.is_(None) if project_id is None else t.c.project_id == project_id
        columns = (t.c[name] for name in SecretVariableView.__dataclass_fields__)  # no value
        rows = await self._rows(select(*columns).where(owner).order_by(t.c.name))
        return [SecretVariableView(**row._asdict()) for row in rows]

    async def list_schedules(self, project_id: str) -> list[ScheduleView]:
        rows = await self._rows(list_schedules_statement(project_id))
        return [schedule_view(row) for row in rows]

    async def get_schedule(self, schedule_id: str) -> ScheduleView:
        rows = await self._rows(get_schedule_statement(schedule_id))
        if not rows:
            raise NotFound(f"no schedule {schedule_id}")
        return schedule_view(rows[0])

    async def list_webhook_deliveries(self, project_id: str, limit: int) -> list[DeliveryRecord]:
        t = webhook_deliveries
        rows = await self._rows(
            select(t)
            .where(t.c.project_id == project_id)
            .order_by(t.c.received_at.desc(), t.c.id.desc())
            .limit(limit)
        )
        return [delivery_record(row) for row in rows]
