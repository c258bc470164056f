"""Test reports: what a build's JUnit reports say, and a test's or a job's history.

The cases come from the ``junit`` archives jobs upload (``application.test_reports``).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from ferrous.api.permissions import require
from ferrous.api.schemas.common import problems
from ferrous.api.schemas.test_reports import BuildTestReport, CaseHistory, JobHistory
from ferrous.api.services import ApiServices
from ferrous.application.test_reports import TestCaseStore, key_of_test
from ferrous.domain.errors import InvalidValue, NotFound

CaseStatus = Literal["passed", "failed", "error", "skipped"]
#: The longest suite, class or test name a history lookup takes by name: three of them,
#: percent-encoded, must fit the 64 KiB a URL may have. Longer names go by their key.
NAME_QUERY_CHARS = 1024
Limit = Annotated[int, Query(ge=1, le=500, description="At most this many, newest first.")]


def build_router(services: ApiServices) -> APIRouter:
    router = APIRouter(tags=["tests"])
    queries = services.queries

    def store() -> TestCaseStore:
        if services.test_cases is None:
            raise NotFound("this server keeps no test reports")
        return services.test_cases

    @router.get(
        "/builds/{build_id}/tests",
        dependencies=[require("builds:read")],
        responses=problems(404, 422),
    )
    async def build_tests(
        build_id: str,
        status: Annotated[CaseStatus | None, Query(description="Only cases so ended.")] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> BuildTestReport:
        """The build's test report from its jobs' JUnit files: totals, suites, and a page of
        cases, failures and errors first. Follow `next_offset` for the next page."""
        report = await store().build_report(build_id, limit=limit, offset=offset, status=status)
        return BuildTestReport.model_validate(report)

    @router.get(
        "/projects/{project}/tests/history",
        dependencies=[require("builds:read")],
        responses=problems(404, 422),
    )
    async def test_history(
        project: str,
        key: Annotated[
            str | None,
            Query(
                pattern="^[0-9a-f]{40}$",
                description="The test's key, as a build's test report gives it with each case.",
            ),
        ] = None,
        name: Annotated[str | None, Query(max_length=NAME_QUERY_CHARS)] = None,
        suite: Annotated[str, Query(max_length=NAME_QUERY_CHARS)] = "",
        class_name: Annotated[str, Query(max_length=NAME_QUERY_CHARS)] = "",
        limit: Limit = 50,
    ) -> CaseHistory:
        """One test's runs in the project's builds (`project`: its id or name), newest
        first. A test is its suite, class name and name, as the reports give them: give
        its `key`, or its `name` with its `suite` and `class_name` (names longer than
        1,024 characters only by `key`)."""
        if key is None and name is None:
            raise InvalidValue("give the test's key, or its name (with its suite and class_name)")
        cases = store()
        project_id = (await queries.get_project(project)).id
        test_key = key if key is not None else key_of_test(suite, class_name, name or "")
        runs = await cases.test_history(project_id, test_key, limit=limit)
        return CaseHistory.model_validate({"items": runs})

    @router.get(
        "/projects/{project}/jobs/history",
        dependencies=[require("jobs:read")],
        responses=problems(404, 422),
    )
    async def job_history(
        project: str,
        name: Annotated[str, Query(min_length=1, max_length=255, description="The job's name.")],
        limit: Limit = 50,
    ) -> JobHistory:
        """How long the job so named ran in the project's builds, newest build first (the
        runs that started and finished: success, failed or canceled)."""
        cases = store()
        project_id = (await queries.get_project(project)).id
        return JobHistory.model_validate(
            {"items": await cases.job_history(project_id, name, limit=limit)}
        )

    return router
