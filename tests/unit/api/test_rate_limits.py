"""Rate limits at the API edge, on the in-memory limiter with a clock the test moves.

Per address for anonymous callers, per principal for authenticated ones; agents' protocol
calls and probes uncounted; an empty bucket answers 429 problem+json with Retry-After.
The limits run before the routes' permission checks: nobody's calls to a route that needs
a caller are refused with 401, and still counted against the address.
The login throttle is driven directly, as the login route will drive it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI, Request

from ferrous.api.app import create_app
from ferrous.api.rate_limits import LoginLimits, LoginThrottle, RequestLimits, address_key
from ferrous.application.authentication import Authentication
from ferrous.domain.access import Principal, PrincipalKind, Role
from ferrous.domain.audit import AuditFilter
from ferrous.domain.errors import InvalidCredentials, RateLimited
from ferrous.infrastructure.memory import InMemoryAuditLog
from ferrous.infrastructure.ratelimit import InMemoryRateLimiter
from tests.unit.api.conftest import assert_problem, register_agent
from tests.unit.api.fakes import FakeWorld
from tests.unit.infrastructure.test_rate_limiter import FakeClock

LIMITS = RequestLimits(per_ip=1.0, ip_burst=3, per_user=2.0, user_burst=5)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def audit_log() -> InMemoryAuditLog:
    return InMemoryAuditLog()


@pytest.fixture
def app(world: FakeWorld, clock: FakeClock, audit_log: InMemoryAuditLog) -> FastAPI:
    services = world.services(
        rate_limiter=InMemoryRateLimiter(clock), request_limits=LIMITS, audit_log=audit_log
    )
    return create_app(services)


def client_at(app: FastAPI, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://test")


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_at(app, "192.0.2.1") as client:
        yield client


async def statuses(
    client: httpx.AsyncClient, count: int, headers: dict[str, str] | None = None
) -> list[int]:
    return [
        (await client.get("/api/v1/projects", headers=headers)).status_code for _ in range(count)
    ]


async def test_an_address_gets_its_burst_then_429_with_retry_after(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    assert await statuses(client, 3) == [401, 401, 401]
    refused = await client.get("/api/v1/projects")
    body = assert_problem(refused, 429)
    assert body["type"] == "urn:ferrous:problem:rate-limited"
    assert refused.headers["retry-after"] == "1"
    assert body["retry_after"] == 1
    clock.now += 0.5
    assert (await client.get("/api/v1/projects")).headers["retry-after"] == "1"  # 0.5 s: up
    clock.now += 0.5
    assert await statuses(client, 2) == [401, 429]


async def test_addresses_count_apart_and_ipv6_by_its_64(app: FastAPI) -> None:
    async with client_at(app, "192.0.2.1") as first, client_at(app, "192.0.2.2") as second:
        assert await statuses(first, 4) == [401, 401, 401, 429]
        assert await statuses(second, 1) == [401]
    async with client_at(app, "2001:db8::1") as one, client_at(app, "2001:db8::ffff") as same:
        assert await statuses(one, 2) == [401, 401]
        assert await statuses(same, 2) == [401, 429]
    assert address_key("2001:db8:0:0:1::7") == "2001:db8::/64"
    assert address_key("::ffff:192.0.2.9") == "192.0.2.9"
    assert address_key("192.0.2.9") == "192.0.2.9"


async def test_an_authenticated_caller_has_its_own_bucket(app: FastAPI, world: FakeWorld) -> None:
    admin, viewer = world.people.headers("admin"), world.people.headers("viewer")
    async with client_at(app, "192.0.2.1") as client:
        assert await statuses(client, 6, admin) == [200] * 5 + [429]
        assert await statuses(client, 3) == [401] * 3  # the address's bucket is untouched
        assert await statuses(client, 1, viewer) == [200]


async def test_agents_protocol_calls_are_not_counted(client: httpx.AsyncClient) -> None:
    auth = await register_agent(client)  # registration is counted: one of three
    for _ in range(10):
        answer = await client.post("/api/v1/agent/heartbeat", json={"jobs": []}, headers=auth)
        assert answer.status_code == 200
    assert await statuses(client, 3) == [401, 401, 429]


async def test_a_wrong_agent_token_is_counted(client: httpx.AsyncClient) -> None:
    bogus = {"Authorization": "Bearer not-an-agent-token"}
    answers = [
        (await client.post("/api/v1/agent/heartbeat", json={"jobs": []}, headers=bogus)).status_code
        for _ in range(4)
    ]
    assert answers == [401, 401, 401, 429]


async def test_a_bearer_token_is_counted_as_its_caller(world: FakeWorld, clock: FakeClock) -> None:
    """The route authenticates after the limits ran: the limits ask the authenticator."""

    class FakeAuthenticator:
        async def authenticate(self, token: str) -> Authentication:
            if token != "fpt_alice":
                raise InvalidCredentials("unknown or invalid token")
            principal = Principal(kind=PrincipalKind.USER, id="u-1", name="alice", role=Role.ADMIN)
            return Authentication(principal=principal)

    services = world.services(
        rate_limiter=InMemoryRateLimiter(clock),
        request_limits=LIMITS,
        authenticator=FakeAuthenticator(),
    )
    async with client_at(create_app(services), "192.0.2.1") as client:
        alice = {"Authorization": "Bearer fpt_alice"}
        assert await statuses(client, 6, alice) == [200] * 5 + [429]
        bogus = {"Authorization": "Bearer fpt_mallory"}
        assert await statuses(client, 4, bogus) == [401, 401, 401, 429]  # the address's
        assert await statuses(client, 1) == [429]


async def test_probes_are_not_counted(client: httpx.AsyncClient) -> None:
    for _ in range(10):
        assert (await client.get("/healthz")).status_code == 200
    assert await statuses(client, 3) == [401, 401, 401]


async def test_refused_requests_are_not_audited(
    client: httpx.AsyncClient, audit_log: InMemoryAuditLog
) -> None:
    answers = [
        (await client.post("/api/v1/projects", json={"name": f"p{n}", "repo_url": "/r.git"}))
        for n in range(5)
    ]
    assert [a.status_code for a in answers] == [401, 401, 401, 429, 429]
    assert len((await audit_log.query(AuditFilter())).items) == 3


async def test_zero_switches_a_limit_off(world: FakeWorld, clock: FakeClock) -> None:
    limits = RequestLimits(per_ip=0, per_user=0)
    app = create_app(world.services(rate_limiter=InMemoryRateLimiter(clock), request_limits=limits))
    async with client_at(app, "192.0.2.1") as client:
        assert set(await statuses(client, 150)) == {401}
        assert set(await statuses(client, 250, world.people.headers())) == {200}


# --- the login throttle: the login route calls check, then failed or succeeded ----------


@pytest.fixture
def throttle(clock: FakeClock) -> LoginThrottle:
    limits = LoginLimits(failures_per_account=5, failures_per_ip=20, window=900.0)
    return LoginThrottle(InMemoryRateLimiter(clock), limits)


async def test_five_failures_lock_the_account_for_a_while(
    throttle: LoginThrottle, clock: FakeClock
) -> None:
    for _ in range(5):
        await throttle.check("alice", "192.0.2.1")
        await throttle.failed("alice", "192.0.2.1")
    with pytest.raises(RateLimited) as refused:
        await throttle.check("alice", "192.0.2.1")
    assert refused.value.retry_after == pytest.approx(180.0)  # 5 per 15 minutes
    with pytest.raises(RateLimited):  # from anywhere, and whatever the case
        await throttle.check(" ALICE", "198.51.100.7")
    await throttle.check("bob", "192.0.2.1")  # other accounts are not locked
    clock.now += 180
    await throttle.check("alice", "192.0.2.1")


async def test_a_success_clears_the_account_not_the_address(
    throttle: LoginThrottle, clock: FakeClock
) -> None:
    for _ in range(4):
        await throttle.failed("alice", "192.0.2.1")
    await throttle.succeeded("alice", "192.0.2.1")
    for _ in range(4):  # four more: the earlier four were forgiven
        await throttle.check("alice", "192.0.2.1")
        await throttle.failed("alice", "192.0.2.1")
    await throttle.check("alice", "192.0.2.1")
    for user in ("u1", "u2", "u3"):  # 8 + 12 = 20 failures from one address
        for _ in range(4):
            await throttle.failed(user, "192.0.2.1")
    with pytest.raises(RateLimited):
        await throttle.check("carol", "192.0.2.1")  # any account from that address
    await throttle.succeeded("carol", "192.0.2.1")
    with pytest.raises(RateLimited):
        await throttle.check("carol", "192.0.2.1")
    await throttle.check("carol", "198.51.100.7")


async def test_checks_alone_take_nothing(throttle: LoginThrottle) -> None:
    for _ in range(50):
        await throttle.check("alice", "192.0.2.1")


async def test_a_throttled_login_answers_429_and_is_audited(
    app: FastAPI, audit_log: InMemoryAuditLog
) -> None:
    """What the login route does with the throttle, through a stand-in route."""

    async def login(request: Request) -> None:
        username = (await request.json())["username"]
        request.state.audit_actor = username
        throttle: LoginThrottle = request.app.state.login_throttle
        await throttle.check(username, request.state.client_ip)
        await throttle.failed(username, request.state.client_ip)
        raise InvalidCredentials("wrong username or password")

    app.add_api_route("/test/login", login, methods=["POST"])
    app.state.login_throttle = LoginThrottle(
        InMemoryRateLimiter(), LoginLimits(failures_per_account=2, failures_per_ip=10)
    )
    async with client_at(app, "192.0.2.1") as client:
        answers = [await client.post("/test/login", json={"username": "root"}) for _ in range(3)]
    assert [a.status_code for a in answers] == [401, 401, 429]
    assert int(answers[2].headers["retry-after"]) == 450  # 2 per 900 s
    assert_problem(answers[2], 429)
    entries = (await audit_log.query(AuditFilter(actor="root"))).items
    assert [e.result for e in entries] == [429, 401, 401]
    assert {e.action for e in entries} == {"POST /test/login"}


async def test_without_a_limiter_nothing_is_throttled() -> None:
    throttle = LoginThrottle(None, LoginLimits())
    for _ in range(10):
        await throttle.check("alice", "192.0.2.1")
        await throttle.failed("alice", "192.0.2.1")
    await throttle.succeeded("alice", "192.0.2.1")
