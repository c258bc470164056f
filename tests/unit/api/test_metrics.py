"""``/metrics`` and the request timing, on the API with fake services and a real registry.

The exposition is read back with prometheus-client's own parser, as Prometheus would.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.responses import StreamingResponse
from starlette.routing import Route
from starlette.types import Message, Scope

from ferrous.api.app import create_app
from ferrous.api.metrics import HttpMetricsMiddleware
from ferrous.application.metrics import (
    BuildTiming,
    EventObserver,
    JobTiming,
    SystemSnapshot,
)
from ferrous.domain.errors import StorageError
from ferrous.domain.events import BuildCompleted, JobCompleted, JobStarted
from ferrous.infrastructure.metrics import PrometheusMetrics
from tests.unit.api.conftest import assert_problem, create_project
from tests.unit.api.fakes import FakeWorld
from tests.unit.application.conftest import FakeClock

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return NOW + timedelta(seconds=seconds)


class FakeReads:
    """What the database would answer; counts the snapshots taken."""

    def __init__(self) -> None:
        self.counts = SystemSnapshot(
            builds={"success": 2, "failed": 1},
            jobs={"running": 1, "pending": 3},
            pending={"": 1, "gpu,linux": 2},
            running=1,
            agents_online=2,
            capacity_slots=5,
            used_slots=1,
            outbox_backlog=4,
            outbox_oldest_age=1.5,
        )
        self.snapshots: list[tuple[datetime, datetime]] = []
        self.failing = False
        self.jobs: dict[tuple[str, int], JobTiming] = {}
        self.builds: dict[str, BuildTiming] = {}

    async def job_timing(self, job_id: str, attempt: int) -> JobTiming | None:
        return self.jobs.get((job_id, attempt))

    async def build_timing(self, build_id: str) -> BuildTiming | None:
        return self.builds.get(build_id)

    async def snapshot(self, now: datetime, online_since: datetime) -> SystemSnapshot:
        self.snapshots.append((now, online_since))
        await asyncio.sleep(0.01)  # a burst of scrapes meets one batch in flight
        if self.failing:
            raise StorageError("the database is away")
        return self.counts


@pytest.fixture
def reads() -> FakeReads:
    return FakeReads()


@pytest.fixture
def metrics(reads: FakeReads) -> PrometheusMetrics:
    return PrometheusMetrics(reads, FakeClock(NOW), timedelta(seconds=60), cache_seconds=60)


async def _client(world: FakeWorld, **changes: object) -> httpx.AsyncClient:
    app = create_app(world.services(**changes))
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app), base_url="http://test", headers=world.people.headers()
    )


@pytest.fixture
async def client(world: FakeWorld, metrics: PrometheusMetrics) -> AsyncIterator[httpx.AsyncClient]:
    async with await _client(world, metrics=metrics) as client:
        yield client


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of an exposition: (name, labels) -> value."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(
    found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return found[(name, frozenset(labels.items()))]


async def scrape(client: httpx.AsyncClient) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    answer = await client.get("/metrics")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain; version=")
    return samples(answer.text)


async def test_requests_are_counted_by_route_template(client: httpx.AsyncClient) -> None:
    await create_project(client)
    for build_id in ("b-1", "b-2", "b-3"):
        assert (await client.get(f"/api/v1/builds/{build_id}")).status_code == 404
    assert (await client.get("/no/such/page")).status_code == 404
    assert (await client.delete("/api/v1/builds")).status_code == 405
    assert (await client.request("BREW", "/api/v1/builds")).status_code == 405

    found = await scrape(client)

    route = "/api/v1/builds/{build_id}"
    assert value(found, "ferrous_http_requests_total", method="GET", route=route, status="404") == 3
    assert (
        value(found, "ferrous_http_request_duration_seconds_count", method="GET", route=route) == 3
    )
    assert (
        value(
            found,
            "ferrous_http_requests_total",
            method="POST",
            route="/api/v1/projects",
            status="201",
        )
        == 1
    )
    unmatched = {"method": "GET", "route": "<unmatched>", "status": "404"}
    assert value(found, "ferrous_http_requests_total", **unmatched) == 1
    builds = {"route": "/api/v1/builds", "status": "405"}
    assert value(found, "ferrous_http_requests_total", method="DELETE", **builds) == 1
    assert value(found, "ferrous_http_requests_total", method="other", **builds) == 1
    assert not any("b-1" in str(labels) for _, labels in found)  # never a raw path


async def test_the_databases_counts_are_read_once_per_burst(
    client: httpx.AsyncClient, reads: FakeReads
) -> None:
    answers = await asyncio.gather(*(client.get("/metrics") for _ in range(5)))
    assert [answer.status_code for answer in answers] == [200] * 5
    assert reads.snapshots == [(NOW, NOW - timedelta(seconds=60))]

    found = samples(answers[0].text)
    assert value(found, "ferrous_builds", status="success") == 2
    assert value(found, "ferrous_builds", status="canceled") == 0  # every status is there
    assert value(found, "ferrous_jobs", status="pending") == 3
    assert value(found, "ferrous_jobs_pending", labels="gpu,linux") == 2
    assert value(found, "ferrous_jobs_pending", labels="") == 1
    assert value(found, "ferrous_jobs_running") == 1
    assert value(found, "ferrous_agents_online") == 2
    assert value(found, "ferrous_agent_capacity_slots") == 5
    assert value(found, "ferrous_agent_used_slots") == 1
    assert value(found, "ferrous_outbox_backlog") == 4
    assert value(found, "ferrous_outbox_oldest_age_seconds") == 1.5


async def test_without_the_database_its_counts_are_left_out(
    world: FakeWorld, reads: FakeReads
) -> None:
    reads.failing = True
    metrics = PrometheusMetrics(reads, FakeClock(NOW), timedelta(seconds=60), cache_seconds=0)
    async with await _client(world, metrics=metrics) as client:
        found = await scrape(client)
        assert not any(name == "ferrous_builds" for name, _ in found)
        reads.failing = False
        assert value(await scrape(client), "ferrous_builds", status="failed") == 1


async def test_a_metrics_token_is_required_when_set(
    world: FakeWorld, metrics: PrometheusMetrics
) -> None:
    async with await _client(world, metrics=metrics, metrics_token="s3cret") as client:
        assert_problem(await client.get("/metrics"), 401)  # an admin's token is not it
        wrong = await client.get("/metrics", headers={"Authorization": "Bearer nope"})
        assert_problem(wrong, 401)
        right = await client.get("/metrics", headers={"Authorization": "Bearer s3cret"})
        assert right.status_code == 200, right.text


async def test_without_an_exporter_there_are_no_metrics(world: FakeWorld) -> None:
    async with await _client(world) as client:
        assert_problem(await client.get("/metrics"), 404)
        assert (await client.get("/healthz")).status_code == 200  # and nothing is timed


async def test_an_event_stream_is_timed_to_its_first_byte(metrics: PrometheusMetrics) -> None:
    release = asyncio.Event()

    async def events() -> AsyncIterator[bytes]:
        yield b"data: first\n\n"
        await release.wait()
        yield b"data: last\n\n"

    async def stream(request: object) -> StreamingResponse:
        return StreamingResponse(events(), media_type="text/event-stream")

    app = HttpMetricsMiddleware(Starlette(routes=[Route("/jobs/{job_id}/events", stream)]), metrics)
    sent: list[Message] = []
    first_byte = asyncio.Event()

    async def receive() -> Message:
        await asyncio.Event().wait()  # the viewer never leaves on its own
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)
        if message["type"] == "http.response.body":
            first_byte.set()

    scope: Scope = {
        "type": "http",
        "method": "GET",
        "path": "/jobs/j-1/events",
        "raw_path": b"/jobs/j-1/events",
        "query_string": b"",
        "headers": [],
        "http_version": "1.1",
        "scheme": "http",
        "server": ("test", 80),
        "client": ("127.0.0.1", 1),
        "root_path": "",
    }
    task = asyncio.create_task(app(scope, receive, send))
    await asyncio.wait_for(first_byte.wait(), 5)
    labels = {"method": "GET", "route": "/jobs/{job_id}/events"}
    assert (
        metrics.registry.get_sample_value("ferrous_http_request_duration_seconds_count", labels)
        == 1
    )  # before the stream ends
    release.set()
    await asyncio.wait_for(task, 5)
    assert (
        metrics.registry.get_sample_value(
            "ferrous_http_requests_total", {**labels, "status": "200"}
        )
        == 1
    )  # once


async def test_events_become_observations(reads: FakeReads, metrics: PrometheusMetrics) -> None:
    observer = EventObserver(reads, metrics)
    reads.jobs[("j-1", 1)] = JobTiming(
        tags=("linux", "gpu"), queued_at=at(0), started_at=at(3), finished_at=at(13)
    )
    reads.jobs[("j-2", 1)] = JobTiming(tags=(), queued_at=at(0), started_at=None, finished_at=None)
    reads.builds["b-1"] = BuildTiming(created_at=at(-5), started_at=at(3), finished_at=at(33))

    await observer.job_started(JobStarted(build_id="b-1", job_id="j-1", agent_id="a", attempt=1))

    def completed(job_id: str, status: str) -> JobCompleted:
        return JobCompleted(
            build_id="b-1",
            job_id=job_id,
            name="test",
            status=status,
            attempt=1,
            exit_code=None,
            failure_reason=None,
        )

    await observer.job_completed(completed("j-1", "failed"))
    await observer.job_completed(completed("j-2", "canceled"))
    await observer.build_completed(BuildCompleted(build_id="b-1", status="failed"))
    await observer.build_completed(BuildCompleted(build_id="gone", status="failed"))

    def sample(name: str, **labels: str) -> float | None:
        return metrics.registry.get_sample_value(name, labels)

    assert sample("ferrous_queue_wait_seconds_count", labels="gpu,linux") == 1
    assert sample("ferrous_queue_wait_seconds_sum", labels="gpu,linux") == 3
    assert sample("ferrous_job_duration_seconds_sum", status="failed") == 10
    assert sample("ferrous_job_duration_seconds_count", status="canceled") is None  # never ran
    assert sample("ferrous_build_duration_seconds_sum", status="failed") == 30
    assert sample("ferrous_build_duration_seconds_count", status="failed") == 1
