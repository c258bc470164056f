"""The read side of schedules on SQL: rows with their pipeline's name, into ``ScheduleView``."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, Select, select

from ferrous.application.queries import ScheduleView
from ferrous.infrastructure.sql.schema import pipelines, schedules

_VIEW = select(
    *(schedules.c[name] for name in ScheduleView.__dataclass_fields__ if name in schedules.c),
    pipelines.c.name.label("pipeline_name"),
).join(pipelines, pipelines.c.id == schedules.c.pipeline_id)


def list_schedules_statement(project_id: str) -> Select[Any]:
    return _VIEW.where(schedules.c.project_id == project_id).order_by(
        schedules.c.created_at, schedules.c.id
    )


def get_schedule_statement(schedule_id: str) -> Select[Any]:
    return _VIEW.where(schedules.c.id == schedule_id)


def schedule_view(row: Row[Any]) -> ScheduleView:
    values = row._asdict()
    values["variables"] = dict(values["variables"])
    return ScheduleView(**values)
