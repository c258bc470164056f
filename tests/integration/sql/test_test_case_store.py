"""The test case store's adapters (SQLite, PostgreSQL, memory): JUnit files recorded per job,
a build's report (totals, suites, failures first, pages), a test's history and a job's
duration history; and a job's coverage kept with the job.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from ferrous.application import test_reports as reports
from ferrous.domain.build import Build
from ferrous.domain.errors import NotFound
from ferrous.domain.project import Pipeline
from ferrous.infrastructure.memory import InMemoryTestCaseStore
from ferrous.infrastructure.sql.test_case_store import BATCH, SqlTestCaseStore
from ferrous.reports.junit import TestCaseResult as Case
from tests.integration.sql.conftest import Storage
from tests.integration.sql.factories import T0, at, job, new_build, seed_pipeline, store_build

UNIT = b"""<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest">
<testcase classname="tests.test_cart" name="test_total" file="tests/test_cart.py" time="0.5"/>
<testcase classname="tests.test_cart" name="test_discount" time="0.25">
<failure message="assert 100 == 90">tests/test_cart.py:9: AssertionError</failure></testcase>
<testcase classname="tests.test_api" name="test_get" time="1.0"><error message="no db"/>
</testcase><testcase classname="tests.test_api" name="test_later"><skipped/></testcase>
</testsuite></testsuites>"""
LINT = b"""<testsuite name="eslint"><testcase classname="src/app.ts" name="no-unused-vars"
time="0.125"/><testcase classname="src/app.ts" name="eqeqeq"><failure message="use ==="/>
</testcase></testsuite>"""


@pytest.fixture
def store(storage: Storage) -> reports.TestCaseStore:
    if storage.engine is None:
        assert storage.store is not None
        return InMemoryTestCaseStore(storage.store)
    return SqlTestCaseStore(storage.engine)


async def a_build(storage: Storage, pipeline: Pipeline, number: int = 1) -> Build:
    build = new_build(pipeline, number, [job("unit"), job("lint")], now=at(number * 100))
    return await store_build(storage.uow_factory, build)


async def record(
    store: reports.TestCaseStore, build: Build, name: str, *files: tuple[str, bytes]
) -> reports.TestReportSummary:
    return await reports.record_junit(
        store,
        job_id=build.job_named(name).id,
        build_id=build.id,
        project_id=build.project_id,
        files=files,
        now=build.created_at,
    )


def listed(report: reports.BuildReport) -> list[tuple[str, str, str, str]]:
    return [(c.job_name, c.class_name, c.name, c.status) for c in report.cases]


async def test_a_builds_report(storage: Storage, store: reports.TestCaseStore) -> None:
    _, pipeline = await seed_pipeline(storage.uow_factory)
    build = await a_build(storage, pipeline)
    summary = await record(store, build, "unit", ("junit/unit.xml", UNIT))
    assert summary == reports.TestReportSummary(total=4, failed=2, warnings=())
    await record(store, build, "lint", ("lint.xml", LINT), ("broken.xml", b"<testsuite>"))

    report = await store.build_report(build.id)
    totals = report.totals
    assert (totals.total, totals.passed, totals.failed, totals.errored, totals.skipped) == (
        6,
        2,
        2,
        1,
        1,
    )
    assert totals.duration == pytest.approx(1.875)
    assert [(s.name, s.total, s.failed, s.errored, s.skipped) for s in report.suites] == [
        ("eslint", 2, 1, 0, 0),
        ("pytest", 4, 1, 1, 1),
    ]
    assert report.suites[1].duration == pytest.approx(1.75)
    assert listed(report) == [  # failures and errors first, then by suite, class, name
        ("lint", "src/app.ts", "eqeqeq", "failed"),
        ("unit", "tests.test_api", "test_get", "error"),
        ("unit", "tests.test_cart", "test_discount", "failed"),
        ("lint", "src/app.ts", "no-unused-vars", "passed"),
        ("unit", "tests.test_api", "test_later", "skipped"),
        ("unit", "tests.test_cart", "test_total", "passed"),
    ]
    assert report.next_offset is None
    discount = report.cases[2]
    assert discount.job_id == build.job_named("unit").id
    assert discount.suite == "pytest"
    assert discount.failure == "assert 100 == 90\n\ntests/test_cart.py:9: AssertionError"
    assert discount.duration == 0.25
    total = report.cases[5]
    assert (total.file, total.failure) == ("tests/test_cart.py", None)
    assert report.cases[4].duration is None

    first = await store.build_report(build.id, limit=4)
    assert (len(first.cases), first.next_offset) == (4, 4)
    rest = await store.build_report(build.id, limit=4, offset=4)
    assert listed(first) + listed(rest) == listed(report)
    assert rest.next_offset is None
    assert rest.totals == report.totals  # totals are the build's, whatever the page
    failed = await store.build_report(build.id, status="failed")
    assert [c.name for c in failed.cases] == ["eqeqeq", "test_discount"]
    assert failed.totals == report.totals


async def test_record_junit_reports_what_it_could_not_read(
    storage: Storage, store: reports.TestCaseStore
) -> None:
    _, pipeline = await seed_pipeline(storage.uow_factory)
    build = await a_build(storage, pipeline)
    summary = await record(
        store, build, "lint", ("a.xml", LINT), ("b.xml", b"<testsuite>\n<oops>"), ("c.xml", b"")
    )
    assert (summary.total, summary.failed) == (2, 1)
    assert [w.split(":")[0] for w in summary.warnings] == ["b.xml", "c.xml"]
    assert summary.warnings[0].startswith("b.xml:2:7: malformed XML")


async def test_a_new_report_replaces_the_jobs_earlier_cases(
    storage: Storage, store: reports.TestCaseStore
) -> None:
    _, pipeline = await seed_pipeline(storage.uow_factory)
    build = await a_build(storage, pipeline)
    await record(store, build, "unit", ("unit.xml", UNIT))
    await record(store, build, "lint", ("lint.xml", LINT))
    fixed = LINT.replace(b'<failure message="use ==="/>', b"")
    assert (await record(store, build, "lint", ("lint.xml", fixed))).failed == 0
    report = await store.build_report(build.id)
    assert report.totals.total == 6
    assert [(s.name, s.failed) for s in report.suites] == [("eslint", 0), ("pytest", 1)]
    assert await record(store, build, "unit") == reports.TestReportSummary(total=0, failed=0)
    assert (await store.build_report(build.id)).totals.total == 2


async def test_unknown_builds_and_builds_without_reports(
    storage: Storage, store: reports.TestCaseStore
) -> None:
    _, pipeline = await seed_pipeline(storage.uow_factory)
    build = await a_build(storage, pipeline)
    with pytest.raises(NotFound):
        await store.build_report("01a219ef-0000-7000-8000-00000000dead")
    empty = await store.build_report(build.id)
    assert empty.totals == reports.SuiteTotals(name="")
    assert (empty.suites, empty.cases, empty.next_offset) == ([], [], None)


async def test_names_sort_by_code_point_on_every_backend(
    storage: Storage, store: reports.TestCaseStore
) -> None:
    _, pipeline = await seed_pipeline(storage.uow_factory)
    build = await a_build(storage, pipeline)
    names = ["b", "B", "\u00e9", "a b", "a", "A", "_x", "a-b", "Z"]
    cases = [
        Case(
            suite="s",
            class_name="",
            name=n,
            file=None,
            duration=None,
            status="passed",
            failure=None,
        )
        for n in names
    ]
    await store.replace_job_cases(
        job_id=build.job_named("unit").id,
        build_id=build.id,
        project_id=build.project_id,
        cases=cases,
        now=T0,
    )
    report = await store.build_report(build.id)
    assert [c.name for c in report.cases] == sorted(names)


async def test_more_cases_than_a_batch(storage: Storage, store: reports.TestCaseStore) -> None:
    _, pipeline = await seed_pipeline(storage.uow_factory)
    build = await a_build(storage, pipeline)
    count = BATCH * 2 + 7
    xml = "".join(
        f'<testcase classname="c" name="t{i:05}" time="0.5">'
        + ("<failure/>" if i % 1000 == 0 else "")
        + "</testcase>"
        for i in range(count)
    )
    data = f'<testsuite name="big">{xml}</testsuite>'.encode()
    summary = await record(store, build, "unit", ("big.xml", data))
    assert (summary.total, summary.failed) == (count, 11)
    report = await store.build_report(build.id, limit=1000, offset=count - 5)
    assert [c.name for c in report.cases] == [f"t{i:05}" for i in range(count - 5, count)]
    assert report.totals.duration == pytest.approx(count * 0.5)


async def test_a_tests_history(storage: Storage, store: reports.TestCaseStore) -> None:
    project, pipeline = await seed_pipeline(storage.uow_factory)
    _, other_pipeline = await seed_pipeline(storage.uow_factory, "other")
    first = await a_build(storage, pipeline, 1)
    second = await a_build(storage, pipeline, 2)
    elsewhere = await a_build(storage, other_pipeline, 1)
    for build in (first, second, elsewhere):
        await record(store, build, "unit", ("unit.xml", UNIT))
    await record(store, second, "unit", ("unit.xml", UNIT.replace(b"failure", b"skipped")))

    key = reports.key_of_test("pytest", "tests.test_cart", "test_discount")
    history = await store.test_history(project.id, key, limit=10)
    assert [(run.build_id, run.status) for run in history] == [
        (second.id, "skipped"),
        (first.id, "failed"),
    ]
    assert history[0].job_id == second.job_named("unit").id
    assert history[0].duration == 0.25
    assert history[0].created_at == second.created_at
    assert [run.build_id for run in await store.test_history(project.id, key, limit=1)] == [
        second.id
    ]
    other_class = reports.key_of_test("pytest", "tests.test_api", "test_discount")
    assert await store.test_history(project.id, other_class, limit=10) == []


def test_the_key_of_a_test() -> None:
    key = reports.key_of_test("s", "c", "n")
    assert len(key) == 40
    assert int(key, 16) >= 0
    assert key != reports.key_of_test("s", "cn", "") != reports.key_of_test("sc", "", "n")


async def ran(
    storage: Storage, pipeline: Pipeline, number: int, seconds: float, exit_code: int = 0
) -> Build:
    """A build whose `unit` job ran ``seconds``; `lint` never started."""
    build = new_build(pipeline, number, [job("unit"), job("lint")], now=at(number * 100))
    unit = build.job_named("unit")
    start = at(number * 100 + 1)
    build.start_job(unit.id, "agent-1", start)
    build.complete_job(
        unit.id,
        attempt=1,
        exit_code=exit_code,
        failure_reason=None,
        now=start + timedelta(seconds=seconds),
        coverage=50.0 + number,
    )
    return await store_build(storage.uow_factory, build)


async def test_a_jobs_duration_history(storage: Storage, store: reports.TestCaseStore) -> None:
    project, pipeline = await seed_pipeline(storage.uow_factory)
    _, other_pipeline = await seed_pipeline(storage.uow_factory, "other")
    first = await ran(storage, pipeline, 1, 30)
    second = await ran(storage, pipeline, 2, 12.5, exit_code=1)
    await ran(storage, other_pipeline, 1, 99)
    await store_build(storage.uow_factory, new_build(pipeline, 3, [job("unit")], now=at(400)))

    history = await store.job_history(project.id, "unit", limit=10)
    assert [(r.build_id, r.status, r.duration) for r in history] == [
        (second.id, "failed", 12.5),
        (first.id, "success", 30.0),
    ]
    assert history[0].job_id == second.job_named("unit").id
    assert history[0].finished_at == at(201 + 12.5)
    assert len(await store.job_history(project.id, "unit", limit=1)) == 1
    assert await store.job_history(project.id, "lint", limit=10) == []  # it never ran


async def test_a_jobs_coverage_is_kept_and_a_retry_clears_it(storage: Storage) -> None:
    _, pipeline = await seed_pipeline(storage.uow_factory)
    build = await ran(storage, pipeline, 1, 30)
    unit_id = build.job_named("unit").id
    view = await storage.queries.get_build(build.id)
    assert [(j.name, j.coverage) for j in view.jobs] == [("unit", 51.0), ("lint", None)]
    assert view.coverage == 51.0
    assert (await storage.queries.get_job(unit_id)).coverage == 51.0

    async with storage.uow_factory() as uow:
        stored = await uow.builds.get(build.id)
        assert stored.job(unit_id).coverage == 51.0
        stored.retry_jobs(["unit"], at(500))
        await uow.builds.save(stored)
        await uow.commit()
    assert (await storage.queries.get_job(unit_id)).coverage is None
