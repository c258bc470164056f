"""A finished build's trace, driven through the bus and captured by the SDK's in-memory
exporter: one root, stages under it, job attempts under their stage, phases under their job,
every time taken from what the build stored."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import UUID

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from ferrous.application import commands as c
from ferrous.application.build_trace import build_trace_handler, trace_finished_build
from ferrous.application.tracing import NoBuildTracer
from ferrous.domain.events import BuildCompleted
from ferrous.domain.phases import Phase
from ferrous.infrastructure.memory import InMemoryQueries, InMemoryStore, memory_uow_factory
from ferrous.infrastructure.telemetry import OtelBuildTracer, tracer_provider
from ferrous.infrastructure.telemetry.build_tracer import nanoseconds
from tests.unit.application.conftest import World

PIPELINE = """
stages: [build, test]
compile:
  stage: build
  script: [make]
unit:
  stage: test
  script: [make test]
  retry: 1
lint:
  stage: test
  script: [make lint]
  allow_failure: true
"""

PHASES = ("prepare", "script", "after_script", "upload")


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def tracer(exporter: InMemorySpanExporter) -> Iterator[OtelBuildTracer]:
    provider = tracer_provider(SimpleSpanProcessor(exporter), instance_id="test-server")
    yield OtelBuildTracer(provider)
    provider.shutdown()


class Timed:
    """Runs jobs through the bus with phases timed on the test's clock."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.reported: dict[tuple[str, int], tuple[Phase, ...]] = {}

    async def run(self, agent_id: str, exit_code: int, seconds: float = 10) -> dict[str, Any]:
        payload = await self.world.claim(agent_id)
        assert payload is not None
        phases = []
        for name in PHASES:
            started = self.world.clock.current
            finished = self.world.clock.advance(seconds=seconds / len(PHASES))
            phases.append(Phase(name=name, started_at=started, finished_at=finished))
        self.world.clock.advance(seconds=0.5)
        await self.world.bus.handle(
            c.CompleteJob(
                agent_id=agent_id,
                job_id=payload["job_id"],
                attempt=payload["attempt"],
                exit_code=exit_code,
                phases=tuple(phases),
            )
        )
        self.reported[(payload["name"], payload["attempt"])] = tuple(phases)
        return payload


async def finished_build(world: World, *, lint_exit: int = 0) -> tuple[str, Timed]:
    """compile; then unit (failing once, then passing) and lint, side by side."""
    pipeline_id = await world.project(PIPELINE)
    agent = await world.agent(capacity=3)
    build = await world.trigger(pipeline_id)
    timed = Timed(world)
    world.clock.advance(seconds=2)
    await timed.run(agent, 0)
    world.clock.advance(seconds=1)
    await timed.run(agent, 1)  # unit, attempt 1 (claim order: plan order)
    await timed.run(agent, lint_exit)
    await timed.run(agent, 0)  # unit, attempt 2
    assert world.build(build.id).status.is_finished
    return build.id, timed


def by_name(spans: list[ReadableSpan]) -> dict[str, list[ReadableSpan]]:
    found: dict[str, list[ReadableSpan]] = {}
    for span in spans:
        found.setdefault(span.name, []).append(span)
    return found


def parent_of(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def span_id(span: ReadableSpan) -> int:
    assert span.context is not None
    return span.context.span_id


async def test_a_build_is_one_trace_of_stages_jobs_and_phases(
    world: World, store: InMemoryStore, tracer: OtelBuildTracer, exporter: InMemorySpanExporter
) -> None:
    build_id, timed = await finished_build(world)
    await trace_finished_build(build_id, InMemoryQueries(store), memory_uow_factory(store), tracer)

    spans = list(exporter.get_finished_spans())
    assert {span.context.trace_id for span in spans if span.context} == {UUID(build_id).int}
    roots = [span for span in spans if span.parent is None]
    assert len(roots) == 1
    [root] = roots
    named = by_name(spans)
    assert root.name == "RUN default"
    assert sorted(named) == sorted(
        ["RUN default", "stage build", "stage test", "compile", "unit", "lint", *PHASES]
    )
    # stages under the build, job attempts under their stage, phases under their attempt
    stages = {name: named[name][0] for name in ("stage build", "stage test")}
    assert {parent_of(s) for s in stages.values()} == {span_id(root)}
    assert [parent_of(s) for s in named["compile"]] == [span_id(stages["stage build"])]
    assert len(named["unit"]) == 2  # one span per attempt
    test_jobs = [*named["unit"], *named["lint"]]
    assert {parent_of(s) for s in test_jobs} == {span_id(stages["stage test"])}
    jobs = [*named["compile"], *test_jobs]
    assert len(named["script"]) == len(jobs) == 4
    for job in jobs:
        children = [s for s in spans if parent_of(s) == span_id(job)]
        assert [s.name for s in sorted(children, key=lambda s: s.start_time or 0)] == list(PHASES)

    # times are the stored ones
    build = world.build(build_id)
    assert root.start_time == nanoseconds(build.created_at)
    assert build.finished_at is not None
    assert root.end_time == nanoseconds(build.finished_at)
    for job in jobs:
        attempt = int(job.attributes["ferrous.job.attempt"])  # type: ignore[index, arg-type]
        stored = build.jobs[job.name].history[attempt - 1]
        assert stored.started_at is not None
        assert stored.finished_at is not None
        assert (job.start_time, job.end_time) == (
            nanoseconds(stored.started_at),
            nanoseconds(stored.finished_at),
        )
        reported = timed.reported[(job.name, attempt)]
        phase_spans = [s for s in spans if parent_of(s) == span_id(job)]
        assert sorted((s.start_time, s.end_time) for s in phase_spans) == sorted(
            (nanoseconds(p.started_at), nanoseconds(p.finished_at)) for p in reported
        )
    stage_test = stages["stage test"]
    assert stage_test.start_time == min(j.start_time or 0 for j in test_jobs)
    assert stage_test.end_time == max(j.end_time or 0 for j in test_jobs)


async def test_spans_carry_the_ci_cd_attributes_and_errors(
    world: World, store: InMemoryStore, tracer: OtelBuildTracer, exporter: InMemorySpanExporter
) -> None:
    build_id, _ = await finished_build(world)
    await trace_finished_build(build_id, InMemoryQueries(store), memory_uow_factory(store), tracer)
    named = by_name(list(exporter.get_finished_spans()))
    build = world.build(build_id)

    [root] = named["RUN default"]
    assert dict(root.attributes or {}) == {
        "cicd.pipeline.name": "default",
        "cicd.pipeline.run.id": build_id,
        "cicd.pipeline.action.name": "RUN",
        "cicd.pipeline.result": "success",
        "vcs.ref.head.name": "main",
        "vcs.ref.head.revision": build.sha,
        "ferrous.project": "demo",
        "ferrous.build.number": 1,
        "ferrous.build.source": build.source,
    }
    assert root.status.status_code == StatusCode.UNSET
    first, second = sorted(named["unit"], key=lambda s: s.start_time or 0)
    unit_id = build.jobs["unit"].id
    assert first.attributes is not None
    assert second.attributes is not None
    assert first.attributes["cicd.pipeline.task.name"] == "unit"
    assert first.attributes["cicd.pipeline.task.run.id"] == f"{unit_id}:1"
    assert first.attributes["cicd.pipeline.task.run.result"] == "failure"
    assert first.attributes["error.type"] == "script_failure"
    assert first.attributes["ferrous.job.exit_code"] == 1
    assert first.status.status_code == StatusCode.ERROR
    assert second.attributes["cicd.pipeline.task.run.id"] == f"{unit_id}:2"
    assert second.attributes["cicd.pipeline.task.run.result"] == "success"
    assert second.status.status_code == StatusCode.UNSET
    for span in (first, second):
        assert span.attributes is not None
        assert span.attributes["cicd.pipeline.name"] == "default"
        assert span.attributes["cicd.pipeline.run.id"] == build_id
        assert span.attributes["cicd.worker.id"]
    [stage] = named["stage test"]
    assert stage.attributes is not None
    assert stage.attributes["ferrous.stage.index"] == 2  # after .pre and build
    assert stage.status.status_code == StatusCode.UNSET  # the failed attempt was retried


async def test_a_failed_build_and_its_stage_are_errors(
    world: World, store: InMemoryStore, tracer: OtelBuildTracer, exporter: InMemorySpanExporter
) -> None:
    pipeline_id = await world.project(PIPELINE.replace("  allow_failure: true\n", ""))
    agent = await world.agent(capacity=3)
    build = await world.trigger(pipeline_id)
    timed = Timed(world)
    await timed.run(agent, 0)
    await timed.run(agent, 0)  # unit
    await timed.run(agent, 2)  # lint fails, not allowed
    await trace_finished_build(build.id, InMemoryQueries(store), memory_uow_factory(store), tracer)
    named = by_name(list(exporter.get_finished_spans()))

    [root] = named["RUN default"]
    assert root.status.status_code == StatusCode.ERROR
    assert root.attributes is not None
    assert root.attributes["cicd.pipeline.result"] == "failure"
    [stage] = named["stage test"]
    assert stage.status.status_code == StatusCode.ERROR
    assert stage.status.description == "failed: lint"
    assert named["stage build"][0].status.status_code == StatusCode.UNSET


async def test_a_canceled_build_shows_its_jobs_that_never_ran(
    world: World, store: InMemoryStore, tracer: OtelBuildTracer, exporter: InMemorySpanExporter
) -> None:
    pipeline_id = await world.project(PIPELINE)
    agent = await world.agent()
    build = await world.trigger(pipeline_id)
    await world.claim(agent)  # compile runs
    world.clock.advance(seconds=5)
    await world.bus.handle(c.CancelBuild(build_id=build.id))
    await trace_finished_build(build.id, InMemoryQueries(store), memory_uow_factory(store), tracer)
    named = by_name(list(exporter.get_finished_spans()))

    [root] = named["RUN default"]
    assert root.attributes is not None
    assert root.attributes["cicd.pipeline.result"] == "cancellation"
    [compile_span] = named["compile"]
    assert compile_span.attributes is not None
    assert compile_span.attributes["cicd.pipeline.task.run.result"] == "cancellation"
    assert compile_span.end_time == nanoseconds(world.clock.current)
    [unit] = named["unit"]  # never ran: an instant at the build's end
    assert unit.start_time == unit.end_time == compile_span.end_time
    assert unit.attributes is not None
    assert unit.attributes["cicd.pipeline.task.run.result"] == "cancellation"


async def test_the_same_build_traced_twice_names_the_same_spans(
    world: World, store: InMemoryStore, tracer: OtelBuildTracer, exporter: InMemorySpanExporter
) -> None:
    build_id, _ = await finished_build(world)
    queries, uows = InMemoryQueries(store), memory_uow_factory(store)
    await trace_finished_build(build_id, queries, uows, tracer)
    first = {(s.name, s.start_time): span_id(s) for s in exporter.get_finished_spans()}
    exporter.clear()
    await trace_finished_build(build_id, queries, uows, tracer)
    second = {(s.name, s.start_time): span_id(s) for s in exporter.get_finished_spans()}
    assert first == second
    assert len(set(first.values())) == len(first)


async def test_the_handler_traces_each_completion_once(
    world: World, store: InMemoryStore, tracer: OtelBuildTracer, exporter: InMemorySpanExporter
) -> None:
    handler = build_trace_handler(InMemoryQueries(store), memory_uow_factory(store), tracer)
    world.bus.subscribe(BuildCompleted, handler)
    build_id, _ = await finished_build(world)
    roots = [s for s in exporter.get_finished_spans() if s.parent is None]
    assert [s.attributes["cicd.pipeline.run.id"] for s in roots if s.attributes] == [build_id]


class Unreadable:
    """Queries that must not be called."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"{name} was read while tracing is off")


async def test_tracing_off_reads_nothing() -> None:
    await trace_finished_build("b", Unreadable(), Unreadable, NoBuildTracer())  # type: ignore[arg-type]


async def test_a_failing_trace_never_fails_the_build(
    world: World, tracer: OtelBuildTracer, exporter: InMemorySpanExporter
) -> None:
    handler = build_trace_handler(Unreadable(), Unreadable, tracer)  # type: ignore[arg-type]
    await handler(BuildCompleted(build_id="b", status="success"))  # logged, not raised
    assert exporter.get_finished_spans() == ()
