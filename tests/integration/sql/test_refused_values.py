"""Values a database cannot take are the caller's to fix (``InvalidValue``: 422), not an
outage (``StorageError``: 503).

PostgreSQL refuses a NUL character (U+0000) in text, in a write as in a query's parameter;
SQLite keeps it. Either way nothing is half written and the next unit of work goes on.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from ferrous.application.ports import UnitOfWork
from ferrous.application.queries import Queries
from ferrous.domain.audit import AuditFilter
from ferrous.domain.errors import InvalidValue, NotFound
from ferrous.domain.project import Project
from ferrous.infrastructure.sql.audit_log import SqlAuditLog
from tests.integration.sql.conftest import Storage
from tests.integration.sql.factories import T0


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def test_a_nul_character_in_a_write(
    storage: Storage, uow_factory: Callable[[], UnitOfWork], queries: Queries
) -> None:
    project = Project.create(name="nul", repo_url="/srv/git/a\x00b", default_branch="main", now=T0)

    async with uow_factory() as uow:
        if storage.backend == "postgres":
            with pytest.raises(InvalidValue, match="cannot store this value"):
                await uow.projects.add(project)
        else:
            await uow.projects.add(project)
            await uow.commit()

    if storage.backend == "postgres":
        with pytest.raises(NotFound):
            await queries.get_project("nul")
    else:
        assert (await queries.get_project("nul")).repo_url == "/srv/git/a\x00b"
    fine = Project.create(name="fine", repo_url="/srv/git/fine", default_branch="main", now=T0)
    async with uow_factory() as uow:
        await uow.projects.add(fine)
        await uow.commit()
    assert (await queries.get_project("fine")).name == "fine"


async def test_a_nul_character_in_a_query(storage: Storage, queries: Queries) -> None:
    assert storage.engine is not None
    audit_log = SqlAuditLog(storage.engine)
    if storage.backend == "postgres":
        with pytest.raises(InvalidValue):
            await queries.get_project("a\x00b")
        with pytest.raises(InvalidValue):
            await audit_log.query(AuditFilter(action_prefix="POST \x00"))
    else:
        with pytest.raises(NotFound):
            await queries.get_project("a\x00b")
        assert (await audit_log.query(AuditFilter(action_prefix="POST \x00"))).items == []
