"""Test reports and coverage through the API, on the real bus and the in-memory adapters.

A build runs through the agent protocol (its jobs report coverage); JUnit files are recorded
for its jobs as an upload would record them; the report, a test's history and a job's
duration history are read back.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from ferrous.api.app import create_app
from ferrous.api.routers.test_reports import NAME_QUERY_CHARS
from ferrous.application import test_reports as reports
from ferrous.application.dependencies import Dependencies, SystemClock
from ferrous.application.messagebus import MessageBus
from ferrous.application.test_reports import key_of_test
from ferrous.domain.errors import NotFound
from ferrous.infrastructure.memory import (
    InMemoryQueries,
    InMemoryStore,
    InMemoryTestCaseStore,
    memory_uow_factory,
)
from tests.auth import People, people
from tests.unit.api.conftest import assert_problem
from tests.unit.api.fakes import FakeWorld
from tests.unit.api.test_with_memory_adapters import PIPELINE, FolderSources

AGENT = "/api/v1/agent"
UNIT = b"""<testsuites><testsuite name="pytest">
<testcase classname="tests.test_cart" name="test_total" file="tests/test_cart.py" time="0.5"/>
<testcase classname="tests.test_cart" name="test_discount" time="0.25">
<failure message="assert 100 == 90">tests/test_cart.py:9: AssertionError
line 2
line 3</failure></testcase>
<testcase classname="tests.test_api" name="test_later"><skipped/></testcase>
</testsuite></testsuites>"""


@dataclass
class World:
    client: httpx.AsyncClient
    store: InMemoryStore
    cases: InMemoryTestCaseStore
    people: People
    agent: dict[str, str]


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    (tmp_path / ".ferrous.yml").write_text(PIPELINE)
    store = InMemoryStore()
    cases = InMemoryTestCaseStore(store)
    deps = Dependencies(clock=SystemClock(), sources=FolderSources(tmp_path), test_cases=cases)
    bus = MessageBus(memory_uow_factory(store), deps)

    async def agent_by_token_hash(token_hash: str) -> str | None:
        found = [a.id for a in store.agents.values() if a.token_hash == token_hash]
        return found[0] if found else None

    signed = people(store)
    services = FakeWorld().services(
        bus=bus,
        queries=InMemoryQueries(store),
        authenticator=signed.authenticator,
        agent_by_token_hash=agent_by_token_hash,
        agent_registration_token="reg",
        claim_timeout=0.01,
        test_cases=cases,
    )
    transport = httpx.ASGITransport(create_app(services))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://test", headers=signed.headers()
    ) as client:
        created = await client.post("/api/v1/projects", json={"name": "demo", "repo_url": "/r"})
        assert created.status_code == 201, created.text
        registered = await client.post(f"{AGENT}/register", json={"token": "reg", "name": "a1"})
        agent = {"Authorization": f"Bearer {registered.json()['token']}"}
        yield World(client, store, cases, signed, agent)


async def run_build(
    world: World, coverage: dict[str, float | None], junit: dict[str, bytes] | None = None
) -> dict[str, Any]:
    """Trigger a build of `build` then `test`; each job reports its coverage and records
    its JUnit file (if any) while it runs."""
    client = world.client
    build = (await client.post("/api/v1/projects/demo/builds", json={})).json()
    for _ in build["jobs"]:
        job = (await client.post(f"{AGENT}/claim", headers=world.agent)).json()
        if junit and job["name"] in junit:
            await reports.record_junit(
                world.cases,
                job_id=job["job_id"],
                build_id=build["id"],
                project_id=build["project_id"],
                files=[("report.xml", junit[job["name"]])],
                now=world.store.builds[build["id"]].created_at,
            )
        body = {"attempt": job["attempt"], "exit_code": 0, "coverage": coverage[job["name"]]}
        done = await client.post(
            f"{AGENT}/jobs/{job['job_id']}/complete", json=body, headers=world.agent
        )
        assert done.status_code == 200, done.text
    return dict((await client.get(f"/api/v1/builds/{build['id']}")).json())


async def test_coverage_is_kept_with_the_job_and_averaged_over_the_build(world: World) -> None:
    build = await run_build(world, {"build": None, "test": 87.5})
    assert [(j["name"], j["coverage"]) for j in build["jobs"]] == [
        ("build", None),
        ("test", 87.5),
    ]
    assert build["coverage"] == 87.5
    job = (await world.client.get(f"/api/v1/jobs/{build['jobs'][1]['id']}")).json()
    assert job["coverage"] == 87.5
    both = await run_build(world, {"build": 100, "test": 50})
    assert both["coverage"] == 75.0
    none = await run_build(world, {"build": None, "test": None})
    assert none["coverage"] is None


@pytest.mark.parametrize("coverage", [b"NaN", b"Infinity", b"-Infinity", b"-0.5", b"100.01"])
async def test_coverage_outside_0_to_100_is_refused(world: World, coverage: bytes) -> None:
    client = world.client
    await client.post("/api/v1/projects/demo/builds", json={})
    job = (await client.post(f"{AGENT}/claim", headers=world.agent)).json()
    response = await client.post(
        f"{AGENT}/jobs/{job['job_id']}/complete",
        content=b'{"attempt": 1, "exit_code": 0, "coverage": ' + coverage + b"}",
        headers={**world.agent, "Content-Type": "application/json"},
    )
    problem = assert_problem(response, 422)
    assert [e["field"] for e in problem["errors"]] == ["body.coverage"]


async def test_a_builds_test_report(world: World) -> None:
    build = await run_build(world, {"build": None, "test": None}, {"test": UNIT, "build": b"<x"})
    response = await world.client.get(f"/api/v1/builds/{build['id']}/tests")
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["totals"] == {
        "total": 3,
        "passed": 1,
        "failed": 1,
        "errored": 0,
        "skipped": 1,
        "duration": 0.75,
    }
    assert report["suites"] == [
        {
            "name": "pytest",
            "total": 3,
            "passed": 1,
            "failed": 1,
            "errored": 0,
            "skipped": 1,
            "duration": 0.75,
        }
    ]
    assert report["next_offset"] is None
    first = report["cases"][0]
    assert first == {
        "job_id": build["jobs"][1]["id"],
        "job_name": "test",
        "key": key_of_test("pytest", "tests.test_cart", "test_discount"),
        "suite": "pytest",
        "class_name": "tests.test_cart",
        "name": "test_discount",
        "file": None,
        "duration": 0.25,
        "status": "failed",
        "failure": "assert 100 == 90\n\ntests/test_cart.py:9: AssertionError\nline 2\nline 3",
    }
    assert [c["name"] for c in report["cases"]] == ["test_discount", "test_later", "test_total"]

    page = (await world.client.get(f"/api/v1/builds/{build['id']}/tests?limit=2")).json()
    assert ([c["name"] for c in page["cases"]], page["next_offset"]) == (
        ["test_discount", "test_later"],
        2,
    )
    rest = await world.client.get(f"/api/v1/builds/{build['id']}/tests?limit=2&offset=2")
    assert [c["name"] for c in rest.json()["cases"]] == ["test_total"]
    skipped = await world.client.get(f"/api/v1/builds/{build['id']}/tests?status=skipped")
    assert [c["name"] for c in skipped.json()["cases"]] == ["test_later"]

    assert_problem(await world.client.get("/api/v1/builds/nope/tests"), 404)
    for bad in ("status=broken", "limit=0", "limit=1001", "offset=-1"):
        assert_problem(await world.client.get(f"/api/v1/builds/{build['id']}/tests?{bad}"), 422)
    viewer = world.people.headers("viewer")
    assert (
        await world.client.get(f"/api/v1/builds/{build['id']}/tests", headers=viewer)
    ).is_success


async def test_history_of_a_test_and_of_a_job(world: World) -> None:
    first = await run_build(world, {"build": None, "test": None}, {"test": UNIT})
    fixed = UNIT.replace(b"failure", b"skipped")
    second = await run_build(world, {"build": None, "test": None}, {"test": fixed})
    client = world.client
    params = {"suite": "pytest", "class_name": "tests.test_cart", "name": "test_discount"}
    for project in ("demo", first["project_id"]):
        history = await client.get(f"/api/v1/projects/{project}/tests/history", params=params)
        assert history.status_code == 200, history.text
        items = history.json()["items"]
        assert [(i["build_id"], i["status"], i["duration"]) for i in items] == [
            (second["id"], "skipped", 0.25),
            (first["id"], "failed", 0.25),
        ]
        assert items[0]["job_id"] == second["jobs"][1]["id"]
        assert items[0]["created_at"].endswith("Z")
    report = await client.get(f"/api/v1/builds/{second['id']}/tests")
    (key,) = {c["key"] for c in report.json()["cases"] if c["name"] == "test_discount"}
    assert key == key_of_test("pytest", "tests.test_cart", "test_discount")
    by_key = await client.get("/api/v1/projects/demo/tests/history", params={"key": key})
    assert by_key.json() == history.json()
    one = await client.get("/api/v1/projects/demo/tests/history", params={**params, "limit": 1})
    assert len(one.json()["items"]) == 1
    unknown = await client.get("/api/v1/projects/demo/tests/history", params={"name": "nope"})
    assert unknown.json() == {"items": []}

    jobs = await client.get("/api/v1/projects/demo/jobs/history", params={"name": "test"})
    assert jobs.status_code == 200, jobs.text
    items = jobs.json()["items"]
    assert [(i["build_id"], i["job_id"], i["status"]) for i in items] == [
        (second["id"], second["jobs"][1]["id"], "success"),
        (first["id"], first["jobs"][1]["id"], "success"),
    ]
    assert all(i["duration"] >= 0 and i["finished_at"].endswith("Z") for i in items)

    for path in ("tests/history?name=x", "jobs/history?name=x"):
        assert_problem(await client.get(f"/api/v1/projects/nope/{path}"), 404)
    assert_problem(await client.get("/api/v1/projects/demo/jobs/history"), 422)
    assert_problem(await client.get("/api/v1/projects/demo/tests/history"), 422)
    for bad in ({"key": "A" * 40}, {"key": "0" * 39}, {"name": "x" * (NAME_QUERY_CHARS + 1)}):
        assert_problem(await client.get("/api/v1/projects/demo/tests/history", params=bad), 422)


def test_the_longest_history_lookup_by_name_fits_a_url() -> None:
    """Three names at their cap, in 4-byte characters, percent-encoded (12 bytes each), with
    a key and a limit: the URL stays under the 64 KiB an HTTP parser takes (httptools)."""
    longest = "\U0010ffff" * NAME_QUERY_CHARS
    params = {"key": "0" * 40, "name": longest, "suite": longest, "class_name": longest}
    url = httpx.URL("http://h/api/v1/projects/" + "p" * 255 + "/tests/history", params=params)
    assert len(url.raw_path) < 64 * 1024


async def test_a_server_without_a_test_case_store_has_no_reports() -> None:
    world = FakeWorld()
    app = create_app(world.services())
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://test", headers=world.people.headers()
    ) as client:
        problem = assert_problem(await client.get("/api/v1/builds/b/tests"), 404)
    assert "no test reports" in problem["detail"]


async def test_an_unknown_build_is_not_found_in_the_store(world: World) -> None:
    with pytest.raises(NotFound):
        await world.cases.build_report("nope")
