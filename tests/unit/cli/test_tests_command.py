"""``ferrous tests BUILD_ID`` against a real API (uvicorn on a thread): the totals, then each
failure with the head of its text; exit 0 whatever the tests did."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import Result
from typer.testing import CliRunner

from ferrous.api.app import create_app
from ferrous.application.test_reports import BuildReport, CaseView, SuiteTotals
from ferrous.cli.main import app
from ferrous.domain.errors import NotFound
from tests.unit.api.fakes import FakeWorld
from tests.unit.cli.conftest import api_in_thread

FAILURE = "\n".join(f"line {i}" for i in range(1, 15))


def case(name: str, status: str, failure: str | None = None, **fields: Any) -> CaseView:
    values: dict[str, Any] = {
        "job_id": "job-1",
        "job_name": "unit",
        "key": "0" * 40,
        "suite": "pytest",
        "class_name": "tests.test_cart",
        "name": name,
        "file": None,
        "duration": 0.5,
        "status": status,
        "failure": failure,
    }
    return CaseView(**{**values, **fields})


class OneReport:
    """The store's reading side, with one build's report."""

    def __init__(self, report: BuildReport) -> None:
        self.report = report
        self.asked: list[tuple[str, int, int]] = []

    async def build_report(
        self, build_id: str, *, limit: int = 100, offset: int = 0, status: str | None = None
    ) -> BuildReport:
        self.asked.append((build_id, limit, offset))
        if build_id != "b-1":
            raise NotFound(f"no build {build_id}")
        return BuildReport(
            totals=self.report.totals,
            suites=self.report.suites,
            cases=self.report.cases[offset : offset + limit],
            next_offset=None,
        )


REPORT = BuildReport(
    totals=SuiteTotals(name="", total=40, passed=36, failed=2, errored=1, skipped=1, duration=3),
    suites=[],
    cases=[
        case("test_discount", "failed", FAILURE, file="tests/test_cart.py"),
        case("test_db", "error", "no db", suite="", class_name="", job_name="integration"),
        case("test_refund", "failed", None),
        case("test_total", "passed"),
    ],
)


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, OneReport]]:
    world = FakeWorld()
    monkeypatch.setenv("FERROUS_TOKEN", world.people.tokens["viewer"])
    store = OneReport(REPORT)
    services = world.services(test_cases=store)  # it only reads: build_report is enough
    with api_in_thread(create_app(services)) as url:
        yield url, store


def ferrous(url: str, *args: str) -> Result:
    return CliRunner().invoke(app, ["tests", *args, "--url", url])


def test_totals_then_the_failures(server: tuple[str, OneReport]) -> None:
    url, store = server
    result = ferrous(url, "b-1", "--lines", "3")
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "40 tests: 36 passed, 2 failed, 1 errors, 1 skipped (3.0 s)\n"
        "\n"
        "FAILED  test_discount  [pytest > tests.test_cart]  (job unit)\n"
        "    tests/test_cart.py\n"
        "    line 1\n"
        "    line 2\n"
        "    line 3\n"
        "    ... (11 more lines)\n"
        "\n"
        "ERROR  test_db  (job integration)\n"
        "    no db\n"
        "\n"
        "FAILED  test_refund  [pytest > tests.test_cart]  (job unit)\n"
    )
    assert store.asked == [("b-1", 20, 0)]


def test_more_failures_than_the_limit(server: tuple[str, OneReport]) -> None:
    url, _ = server
    result = ferrous(url, "b-1", "--limit", "1", "--lines", "0")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[2:] == [
        "FAILED  test_discount  [pytest > tests.test_cart]  (job unit)",
        "    tests/test_cart.py",
        "",
        "(2 more failures: raise --limit, or see --json)",
    ]


def test_json_and_errors(server: tuple[str, OneReport]) -> None:
    url, _ = server
    data = json.loads(ferrous(url, "b-1", "--json").stdout)
    assert data["totals"]["total"] == 40
    assert [c["name"] for c in data["cases"]] == [
        "test_discount",
        "test_db",
        "test_refund",
        "test_total",
    ]
    missing = ferrous(url, "b-2")
    assert missing.exit_code == 1
    assert "no build b-2 (HTTP 404)" in missing.stderr
