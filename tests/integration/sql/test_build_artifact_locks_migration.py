"""Migration 0015 on rows written before it: what each build is known to have built and
whether it succeeded, from what older rows hold; and its downgrade keeps every row."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import NullPool

from ferrous.infrastructure.sql import create_engine, migrate
from ferrous.infrastructure.sql.migrate import alembic_config
from ferrous.infrastructure.sql.types import JSON_TYPE, UtcDateTime
from tests.integration.sql.conftest import postgres_admin, postgres_url, with_database
from tests.integration.sql.factories import T0

SHA = "0123456789abcdef0123456789abcdef01234567"
OLD_INDEX = "ix_builds_pipeline_id_ref_status_number"
NEW_INDEX = "ix_builds_pipeline_id_ref_kind_ref_has_succeeded_number"

# the tables as revision 0014 has them (the columns without a default)
projects = sa.table(
    "projects",
    *(sa.column(name, sa.String) for name in ("id", "name", "repo_url", "default_branch")),
    sa.column("created_at", UtcDateTime),
)
pipelines = sa.table(
    "pipelines",
    *(sa.column(name, sa.String) for name in ("id", "project_id", "name")),
    sa.column("enabled", sa.Boolean),
    sa.column("created_at", UtcDateTime),
)
builds = sa.table(
    "builds",
    *(sa.column(n, sa.String) for n in ("id", "project_id", "pipeline_id", "ref", "sha")),
    *(sa.column(n, sa.String) for n in ("source", "status")),
    sa.column("number", sa.Integer),
    sa.column("version", sa.Integer),
    sa.column("variables", JSON_TYPE),
    sa.column("problems", JSON_TYPE),
    sa.column("created_at", UtcDateTime),
)
jobs = sa.table(
    "jobs",
    *(sa.column(n, sa.String) for n in ("id", "build_id", "name", "stage", "status")),
    *(sa.column(n, sa.Integer) for n in ("position", "stage_index", "attempt")),
    sa.column("failure_allowed", sa.Boolean),
    *(sa.column(n, JSON_TYPE) for n in ("definition", "spec", "tags")),
)

#: label: (ref, status, the CI_* variables of its one job, or None: no job)
OLDER_BUILDS: dict[str, tuple[str, str, dict[str, str] | None]] = {
    "tag": ("v1", "success", {"CI_COMMIT_TAG": "v1", "CI_COMMIT_REF_NAME": "v1"}),
    "branch of the tag's name": ("v1", "failed", {"CI_COMMIT_BRANCH": "v1"}),
    "commit": (SHA, "success", {"CI_COMMIT_REF_NAME": ""}),
    "config error": ("main", "failed", None),
    "a variable named so": ("main", "success", {"CI_COMMIT_TAG": "not-the-ref"}),
    "running": ("main", "running", {"CI_COMMIT_BRANCH": "main"}),
}


@pytest.fixture(params=["sqlite", "postgres"])
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """An empty database (no revision applied)."""
    if request.param == "sqlite":
        found = create_engine(f"sqlite:///{tmp_path / 'older.db'}")
        try:
            yield found
        finally:
            await found.dispose()
        return
    url = postgres_url()
    name = f"ferrous_0015_{uuid.uuid4().hex[:12]}"
    await postgres_admin(url, f'CREATE DATABASE "{name}"')
    found = create_engine(with_database(url, name), poolclass=NullPool)
    try:
        yield found
    finally:
        await found.dispose()
        await postgres_admin(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def seed_older_builds(engine: AsyncEngine) -> dict[str, str]:
    """OLDER_BUILDS as revision 0014 stores them; their ids by label."""
    ids = {label: str(uuid.uuid4()) for label in OLDER_BUILDS}
    async with engine.begin() as conn:
        await conn.execute(
            sa.insert(projects).values(
                id="p", name="demo", repo_url="/srv/demo", default_branch="main", created_at=T0
            )
        )
        await conn.execute(
            sa.insert(pipelines).values(
                id="d", project_id="p", name="default", enabled=True, created_at=T0
            )
        )
        for number, (label, (ref, status, variables)) in enumerate(OLDER_BUILDS.items(), 1):
            row: dict[str, Any] = {"ref": ref, "sha": SHA, "source": "push", "status": status}
            await conn.execute(
                sa.insert(builds).values(
                    id=ids[label],
                    project_id="p",
                    pipeline_id="d",
                    number=number,
                    version=1,
                    variables={},
                    problems=[],
                    created_at=T0,
                    **row,
                )
            )
            if variables is None:
                continue
            await conn.execute(
                sa.insert(jobs).values(
                    id=str(uuid.uuid4()),
                    build_id=ids[label],
                    name="build",
                    stage="test",
                    status=status,
                    position=0,
                    stage_index=0,
                    attempt=1,
                    failure_allowed=False,
                    definition={"name": "build"},
                    spec={"name": "build", "variables": {"A": "1", **variables}},
                    tags=[],
                )
            )
    return ids


def _downgrade(connection: Connection, revision: str) -> None:
    command.downgrade(alembic_config(connection), revision)


async def test_older_builds_get_their_ref_kind_and_success(engine: AsyncEngine) -> None:
    await migrate(engine, "0014")
    ids = await seed_older_builds(engine)
    await migrate(engine, "0015")

    async with engine.connect() as conn:
        rows = (await conn.execute(sa.text("SELECT id, ref_kind, has_succeeded FROM builds"))).all()
        indexes = await conn.run_sync(
            lambda c: {i["name"] for i in sa.inspect(c).get_indexes("builds")}
        )
    found = {row.id: (row.ref_kind, bool(row.has_succeeded)) for row in rows}
    assert {label: found[id_] for label, id_ in ids.items()} == {
        "tag": ("tag", True),
        "branch of the tag's name": ("branch", False),
        "commit": ("commit", True),
        "config error": ("branch", False),
        "a variable named so": ("branch", True),
        "running": ("branch", False),
    }
    assert NEW_INDEX in indexes
    assert OLD_INDEX not in indexes

    async with engine.begin() as conn:
        await conn.run_sync(_downgrade, "0014")
    async with engine.connect() as conn:
        columns = await conn.run_sync(
            lambda c: {col["name"] for col in sa.inspect(c).get_columns("builds")}
        )
        indexes = await conn.run_sync(
            lambda c: {i["name"] for i in sa.inspect(c).get_indexes("builds")}
        )
        counts = [
            (await conn.execute(sa.select(sa.func.count()).select_from(table))).scalar()
            for table in (pipelines, builds, jobs)
        ]
    assert not {"ref_kind", "has_succeeded"} & columns
    assert OLD_INDEX in indexes
    assert NEW_INDEX not in indexes
    assert counts == [1, len(OLDER_BUILDS), len(OLDER_BUILDS) - 1]  # nothing cascaded away
