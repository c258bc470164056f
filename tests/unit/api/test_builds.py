"""Builds and jobs: trigger, list with filters, inspect, cancel, retry, play."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta, timezone

import httpx

from ferrous.api.schemas.builds import BuildOut, BuildPage, build_page_json
from ferrous.application.commands import CancelBuild, PlayJob, TriggerBuild
from ferrous.application.queries import AttemptView, BuildSummary, Page
from tests.unit.api.conftest import assert_problem, create_project, trigger
from tests.unit.api.fakes import T0, FakeWorld

BUILD_FIELDS = {
    "id", "number", "project_id", "project_name", "pipeline_id", "pipeline_name", "ref",
    "sha", "source", "status", "created_at", "started_at", "finished_at",
}  # fmt: skip
JOB_FIELDS = {
    "id", "build_id", "name", "stage", "stage_index", "status", "when", "needs", "tags",
    "allow_failure", "failure_allowed", "attempt", "agent_id", "exit_code", "failure_reason",
    "queued_at", "started_at", "finished_at", "log_size", "coverage",
}  # fmt: skip


async def test_trigger_a_pipeline(client: httpx.AsyncClient, world: FakeWorld) -> None:
    pipeline_id = (await create_project(client))["default_pipeline_id"]

    response = await client.post(
        f"/api/v1/pipelines/{pipeline_id}/builds",
        json={"ref": "release", "sha": "ABCDEF1", "variables": {"DEPLOY": "yes", "_X": ""}},
    )

    assert response.status_code == 201
    build = response.json()
    assert set(build) == BUILD_FIELDS | {
        "failure_reason",
        "problems",
        "variables",
        "stages",
        "jobs",
        "schedule_id",
        "coverage",
    }
    assert build["status"] == "pending"
    assert build["variables"] == ["DEPLOY", "_X"]  # names only
    assert build["stages"] == ["test"]
    assert [set(job) for job in build["jobs"]] == [JOB_FIELDS]
    assert response.headers["location"] == f"/api/v1/builds/{build['id']}"
    assert world.commands[-1] == TriggerBuild(
        pipeline_id=pipeline_id,
        ref="release",
        sha="ABCDEF1",
        source="api",
        variables={"DEPLOY": "yes", "_X": ""},
    )


async def test_trigger_the_default_pipeline_of_a_project(
    client: httpx.AsyncClient, world: FakeWorld
) -> None:
    project = await create_project(client)

    build = await trigger(client, "ferrous")

    assert build["pipeline_id"] == project["default_pipeline_id"]
    assert world.commands[-1] == TriggerBuild(pipeline_id=project["default_pipeline_id"])
    assert_problem(await client.post("/api/v1/projects/nope/builds", json={}), 404)
    assert_problem(await client.post("/api/v1/pipelines/nope/builds", json={}), 404)


async def test_trigger_names_invalid_fields(client: httpx.AsyncClient) -> None:
    await create_project(client)

    response = await client.post(
        "/api/v1/projects/ferrous/builds",
        json={"ref": "", "sha": "not-a-sha", "variables": {"BAD-NAME": "x"}},
    )

    fields = {e["field"] for e in assert_problem(response, 422)["errors"]}
    assert fields == {"body.ref", "body.sha", "body.variables.BAD-NAME[key]"}


async def test_list_builds_pages_newest_first(client: httpx.AsyncClient) -> None:
    await create_project(client)
    ids = [(await trigger(client))["id"] for _ in range(3)]

    first = (await client.get("/api/v1/builds", params={"limit": 2})).json()
    second = (await client.get("/api/v1/builds", params={"cursor": first["next_cursor"]})).json()

    assert [b["id"] for b in first["items"]] == ids[:0:-1]
    assert set(first["items"][0]) == BUILD_FIELDS
    assert [b["id"] for b in second["items"]] == ids[:1]
    assert second["next_cursor"] is None


async def test_list_builds_passes_the_filters(client: httpx.AsyncClient, world: FakeWorld) -> None:
    project = await create_project(client)
    uuid = "0190c2a4-0000-7000-8000-000000000000"

    await client.get(
        "/api/v1/builds",
        params={
            "project": "ferrous",
            "pipeline": "p-1",
            "status": "failed",
            "ref": "main",
            "created_after": "2025-01-01T00:00:00Z",
            "created_before": "2025-02-01T00:00:00+01:00",
            "limit": 200,
            "cursor": "c",
        },
    )
    await client.get("/api/v1/builds", params={"project": uuid})  # an id is not looked up

    (by_name, limit, cursor), (by_id, _, _) = world.queries.build_filters
    assert by_name.project_id == project["id"]
    assert by_name.pipeline_id == "p-1"
    assert by_name.status == "failed"
    assert by_name.ref == "main"
    assert by_name.created_after == datetime(2025, 1, 1, tzinfo=UTC)
    assert by_name.created_before == datetime(2025, 1, 31, 23, tzinfo=UTC)
    assert (limit, cursor) == (200, "c")
    assert by_id.project_id == uuid


async def test_list_builds_validates_its_query(client: httpx.AsyncClient) -> None:
    for params, field in [
        ({"limit": 0}, "query.limit"),
        ({"limit": 201}, "query.limit"),
        ({"status": "bogus"}, "query.status"),
        ({"created_after": "yesterday"}, "query.created_after"),
    ]:
        response = await client.get("/api/v1/builds", params=params)
        assert [e["field"] for e in assert_problem(response, 422)["errors"]] == [field]
    assert_problem(await client.get("/api/v1/builds", params={"project": "nope"}), 404)


async def test_get_cancel_and_retry_a_build(client: httpx.AsyncClient, world: FakeWorld) -> None:
    await create_project(client)
    build = await trigger(client)

    fetched = await client.get(f"/api/v1/builds/{build['id']}")
    canceled = await client.post(f"/api/v1/builds/{build['id']}/cancel")
    again = await client.post(f"/api/v1/builds/{build['id']}/cancel")
    retried = await client.post(f"/api/v1/builds/{build['id']}/retry")

    assert fetched.json() == build
    assert canceled.json()["status"] == "canceled"
    assert CancelBuild(build_id=build["id"]) in world.commands
    assert assert_problem(again, 409)["type"] == "urn:ferrous:problem:conflict"
    assert retried.json()["status"] == "pending"
    assert_problem(await client.get("/api/v1/builds/nope"), 404)
    assert_problem(await client.post("/api/v1/builds/nope/cancel"), 404)


async def test_build_problems_are_listed(client: httpx.AsyncClient, world: FakeWorld) -> None:
    await create_project(client)
    build_id = (await trigger(client))["id"]
    problem = {
        "severity": "error",
        "message": "unknown keyword",
        "file": ".ferrous.yml",
        "line": 3,
        "column": 5,
        "path": "test.scrpit",
        "code": "unknown-keyword",
    }
    view = world.queries.builds[build_id]
    world.queries.builds[build_id] = dataclasses.replace(
        view, problems=[problem], failure_reason="config_error"
    )

    body = (await client.get(f"/api/v1/builds/{build_id}")).json()

    assert body["problems"] == [problem]
    assert body["failure_reason"] == "config_error"


async def test_timestamps_are_iso_8601_utc(client: httpx.AsyncClient, world: FakeWorld) -> None:
    await create_project(client)
    job_id = (await trigger(client))["jobs"][0]["id"]
    world.queries.set_job(
        job_id,
        started_at=datetime(2025, 1, 31, 12, 0, 5),  # naive: taken as UTC
        finished_at=datetime(2025, 1, 31, 14, 0, 9, 250000, tzinfo=timezone(timedelta(hours=2))),
    )

    job = (await client.get(f"/api/v1/jobs/{job_id}")).json()

    assert job["queued_at"] == "2025-01-31T12:00:00Z"
    assert job["started_at"] == "2025-01-31T12:00:05Z"
    assert job["finished_at"] == "2025-01-31T12:00:09.250000Z"


async def test_get_retry_and_play_jobs(client: httpx.AsyncClient, world: FakeWorld) -> None:
    await create_project(client)
    job_id = (await trigger(client))["jobs"][0]["id"]
    attempt = AttemptView(
        number=1,
        status="failed",
        agent_id="agent-9",
        exit_code=1,
        failure_reason="script_failure",
        started_at=T0,
        finished_at=T0 + timedelta(seconds=4),
    )

    pending_retry = await client.post(f"/api/v1/jobs/{job_id}/retry")
    world.queries.set_job(job_id, status="failed", attempt=1, attempts=[attempt])
    job = (await client.get(f"/api/v1/jobs/{job_id}")).json()
    retried = await client.post(f"/api/v1/jobs/{job_id}/retry")
    world.queries.set_job(job_id, status="manual")
    played = await client.post(f"/api/v1/jobs/{job_id}/play")

    assert_problem(pending_retry, 409)
    assert set(job) == JOB_FIELDS | {"attempts"}
    assert job["attempts"] == [
        {
            "number": 1,
            "status": "failed",
            "agent_id": "agent-9",
            "exit_code": 1,
            "failure_reason": "script_failure",
            "started_at": "2025-01-31T12:00:00Z",
            "finished_at": "2025-01-31T12:00:04Z",
        }
    ]
    assert (retried.json()["status"], retried.json()["attempt"]) == ("pending", 2)
    assert played.json()["status"] == "pending"
    assert world.commands[-1] == PlayJob(job_id=job_id)
    assert_problem(await client.get("/api/v1/jobs/nope"), 404)
    assert_problem(await client.post("/api/v1/jobs/nope/play"), 404)


async def test_list_agents(client: httpx.AsyncClient) -> None:
    await client.post(
        "/api/v1/agent/register",
        json={"token": "reg-secret", "name": "a1", "labels": ["linux"], "platform": {"os": "l"}},
    )

    items = (await client.get("/api/v1/agents")).json()["items"]

    assert items == [
        {
            "id": items[0]["id"],
            "name": "a1",
            "labels": ["linux"],
            "capacity": 1,
            "platform": {"os": "l"},
            "status": "online",
            "embedded": False,
            "created_at": "2025-01-31T12:00:00Z",
            "last_seen_at": "2025-01-31T12:00:00Z",
            "running_jobs": 0,
        }
    ]


def test_the_fast_listing_json_equals_the_documented_model() -> None:
    summary = BuildSummary(
        id="b-1",
        project_id="p-1",
        project_name="ferrous",
        pipeline_id="q-1",
        pipeline_name="default",
        number=7,
        ref="main",
        sha="a" * 40,
        source="push",
        status="running",
        created_at=T0,
        started_at=T0 + timedelta(microseconds=5),
        finished_at=None,
    )
    page = Page(items=[summary, summary], next_cursor="next")

    fast = json.loads(build_page_json(page))
    documented = BuildPage(
        items=[BuildOut.model_validate(summary)] * 2, next_cursor="next"
    ).model_dump(mode="json")

    assert fast == documented
    assert json.loads(build_page_json(Page(items=[], next_cursor=None))) == {
        "items": [],
        "next_cursor": None,
    }
