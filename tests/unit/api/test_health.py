"""``/healthz`` and ``/readyz`` through the real app, and the readiness check's own rules:
concurrent probes with a timeout each, shared checks, reasons per component, changes logged
once. The probes here are plain coroutines; the real database and broker probes are tested
against the real things (``tests/integration/sql/test_readiness.py``, ``tests/e2e``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import pytest
import structlog
from fastapi import FastAPI
from structlog.testing import capture_logs

from ferrous.api.app import create_app
from ferrous.api.rate_limits import RequestLimits
from ferrous.application.readiness import Readiness, ReadinessCheck
from ferrous.domain.audit import AuditFilter
from ferrous.domain.errors import NotReady
from ferrous.infrastructure.memory import InMemoryAuditLog
from ferrous.infrastructure.ratelimit import InMemoryRateLimiter
from tests.unit.api.fakes import FakeWorld


class Backend:
    """A probe whose answer the test sets: None (fine), an exception, or a hang."""

    def __init__(self) -> None:
        self.failure: BaseException | None = None
        self.hang = False
        self.calls = 0

    async def __call__(self) -> None:
        self.calls += 1
        if self.hang:
            await asyncio.sleep(60)
        if self.failure is not None:
            raise self.failure


@pytest.fixture
def database() -> Backend:
    return Backend()


@pytest.fixture
def broker() -> Backend:
    return Backend()


@pytest.fixture
def audit_log() -> InMemoryAuditLog:
    return InMemoryAuditLog()


@pytest.fixture
def app(
    world: FakeWorld, database: Backend, broker: Backend, audit_log: InMemoryAuditLog
) -> FastAPI:
    check = ReadinessCheck({"database": database, "broker": broker}, timeout=0.2, max_age=0)
    services = world.services(
        readiness=check,
        audit_log=audit_log,
        rate_limiter=InMemoryRateLimiter(),
        request_limits=RequestLimits(per_ip=0.001, ip_burst=1),  # one request, then 429
    )
    return create_app(services)


@pytest.fixture
async def anonymous(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app), base_url="http://test"
    ) as client:
        yield client


async def test_ready_when_every_backend_answers(anonymous: httpx.AsyncClient) -> None:
    response = await anonymous.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"database": "ok", "broker": "ok"}}
    assert response.headers["cache-control"] == "no-store"


async def test_not_ready_names_the_component_and_why(
    anonymous: httpx.AsyncClient, database: Backend, broker: Backend
) -> None:
    database.failure = ConnectionRefusedError(111, "Connect call failed")
    broker.failure = NotReady("not migrated: the database is at 0011, this server needs 0013")
    response = await anonymous.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {
        "status": "not-ready",
        "checks": {
            "database": "unreachable: ConnectionRefusedError: [Errno 111] Connect call failed",
            "broker": "not migrated: the database is at 0011, this server needs 0013",
        },
    }
    assert (await anonymous.get("/healthz")).json() == {"status": "ok"}  # alive all the same


async def test_a_hung_backend_is_unreachable_after_the_timeout(
    anonymous: httpx.AsyncClient, database: Backend, broker: Backend
) -> None:
    database.hang = broker.hang = True
    started = time.monotonic()
    response = await anonymous.get("/readyz")
    assert time.monotonic() - started < 1.0  # both at once, 0.2 s each
    assert response.status_code == 503
    assert response.json()["checks"] == {
        "database": "unreachable: no answer within 0.2 s",
        "broker": "unreachable: no answer within 0.2 s",
    }


async def test_ready_again_when_the_backend_returns(
    anonymous: httpx.AsyncClient, database: Backend
) -> None:
    database.failure = OSError("connection refused")
    assert (await anonymous.get("/readyz")).status_code == 503
    database.failure = None
    assert (await anonymous.get("/readyz")).status_code == 200


async def test_probes_are_never_rate_limited_nor_audited(
    anonymous: httpx.AsyncClient, audit_log: InMemoryAuditLog
) -> None:
    statuses = [(await anonymous.get(path)).status_code for path in ["/readyz", "/healthz"] * 5]
    assert statuses == [200] * 10
    assert (await anonymous.get("/api/v1/projects")).status_code == 401  # others are limited
    assert (await anonymous.get("/api/v1/projects")).status_code == 429
    assert (await audit_log.query(AuditFilter())).items == []


async def test_without_a_readiness_check_the_server_is_ready(world: FakeWorld) -> None:
    app = create_app(world.services())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as c:
        response = await c.get("/readyz")
    assert (response.status_code, response.json()) == (200, {"status": "ready", "checks": {}})


async def test_concurrent_callers_share_one_check_and_recent_results_are_reused() -> None:
    backend = Backend()
    now = [100.0]
    check = ReadinessCheck({"database": backend}, max_age=1.0, clock=lambda: now[0])
    results = await asyncio.gather(*(check.check() for _ in range(20)))
    assert backend.calls == 1
    assert all(result == Readiness({"database": "ok"}) for result in results)
    now[0] += 0.5
    await check.check()
    assert backend.calls == 1  # younger than max_age
    now[0] += 1.0
    await check.check()
    assert backend.calls == 2


async def test_a_caller_that_leaves_does_not_cancel_the_others_check() -> None:
    gate = asyncio.Event()

    async def slow() -> None:
        await gate.wait()

    check = ReadinessCheck({"database": slow}, timeout=5.0, max_age=0)
    leaving = asyncio.create_task(check.check())
    staying = asyncio.create_task(check.check())
    await asyncio.sleep(0.01)
    leaving.cancel()
    gate.set()
    assert (await staying).ready


async def test_changes_are_logged_once_with_the_request_id(
    anonymous: httpx.AsyncClient, database: Backend
) -> None:
    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        await anonymous.get("/readyz")  # ready from the start: nothing to say
        database.failure = OSError("connection refused")
        for _ in range(3):
            await anonymous.get("/readyz", headers={"X-Request-ID": "probe-1"})
        database.failure = None
        await anonymous.get("/readyz", headers={"X-Request-ID": "probe-2"})
    changes = [(e["event"], e["component"], e["request_id"]) for e in logs]
    assert changes == [
        ("component_not_ready", "database", "probe-1"),
        ("component_ready", "database", "probe-2"),
    ]
    assert logs[0]["reason"] == "unreachable: OSError: connection refused"
