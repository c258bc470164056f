"""The audit log through the API: what the middleware records, and ``GET /api/v1/audit``.

State-changing calls are recorded with their route template, path parameters, status,
address and request id; reads and the agents' protocol traffic are not; the actor is the
caller the bearer token names, a login's attempted username, a webhook's forge, or
anonymous. The listing filters and pages newest first, and the log has no way to change
or remove an entry.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from structlog.testing import capture_logs

from ferrous.api.app import create_app
from ferrous.api.permissions import route_permissions
from ferrous.application.guard_ports import AuditLog
from ferrous.application.webhooks import WebhookSignatureInvalid
from ferrous.domain.access import Role
from ferrous.domain.audit import AuditEntry, AuditFilter
from ferrous.domain.errors import InvalidCredentials, StorageError
from ferrous.infrastructure.memory import InMemoryAuditLog
from ferrous.infrastructure.sql.audit_log import SqlAuditLog
from tests.unit.api.conftest import assert_problem, create_project, register_agent
from tests.unit.api.fakes import FakeWorld


@pytest.fixture
def audit_log() -> InMemoryAuditLog:
    return InMemoryAuditLog()


@pytest.fixture
def app(world: FakeWorld, audit_log: InMemoryAuditLog) -> FastAPI:
    world.people.user("alice", Role.DEVELOPER)
    return create_app(world.services(audit_log=audit_log, trusted_proxies=("10.0.0.0/8",)))


def client_at(
    app: FastAPI, address: str, headers: dict[str, str] | None = None, **options: Any
) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app, client=(address, 40000), **options)
    return httpx.AsyncClient(transport=transport, base_url="http://test", headers=headers)


@pytest.fixture
async def client(app: FastAPI, world: FakeWorld) -> AsyncIterator[httpx.AsyncClient]:
    async with client_at(app, "203.0.113.7", world.people.headers()) as client:
        yield client


async def entries(audit_log: AuditLog, **filters: Any) -> list[AuditEntry]:
    return (await audit_log.query(AuditFilter(**filters), limit=500)).items


async def test_state_changes_are_recorded_with_route_target_result_and_address(
    client: httpx.AsyncClient, audit_log: InMemoryAuditLog
) -> None:
    await create_project(client, "demo")
    duplicate = await client.post(
        "/api/v1/projects", json={"name": "demo", "repo_url": "/srv/git/demo.git"}
    )
    assert duplicate.status_code == 409
    created = await client.post(
        "/api/v1/projects/demo/pipelines",
        json={"name": "nightly", "config_path": ".ferrous.yml"},
        headers={"X-Request-ID": "req-42"},
    )
    assert created.status_code == 201, created.text

    pipeline, conflict, project = await entries(audit_log)  # newest first
    assert pipeline.action == "POST /api/v1/projects/{project}/pipelines"
    assert pipeline.target == {"project": "demo"}
    assert pipeline.result == 201
    assert pipeline.source_ip == "203.0.113.7"
    assert pipeline.request_id == "req-42"
    assert (pipeline.actor_kind, pipeline.actor_name, pipeline.role) == ("user", "admin", "admin")
    assert (conflict.action, conflict.result) == ("POST /api/v1/projects", 409)
    assert (project.action, project.result, project.target) == ("POST /api/v1/projects", 201, {})
    assert project.request_id is not None
    assert len(project.request_id) == 32  # generated
    assert project.at <= conflict.at <= pipeline.at


async def test_reads_and_the_agent_protocol_are_not_recorded(
    client: httpx.AsyncClient, audit_log: InMemoryAuditLog
) -> None:
    await create_project(client)
    auth = await register_agent(client)
    assert (await client.get("/api/v1/projects")).status_code == 200
    assert (await client.get("/api/v1/builds")).status_code == 200
    heartbeat = await client.post("/api/v1/agent/heartbeat", json={"jobs": []}, headers=auth)
    assert heartbeat.status_code == 200, heartbeat.text

    actions = [entry.action for entry in await entries(audit_log)]
    assert actions == ["POST /api/v1/agent/register", "POST /api/v1/projects"]


async def test_an_unknown_route_is_not_recorded(
    client: httpx.AsyncClient, audit_log: InMemoryAuditLog
) -> None:
    assert (await client.post("/api/v1/no/such/thing")).status_code == 404
    assert (await client.delete("/api/v1/projects/x/y/z")).status_code == 404
    assert await entries(audit_log) == []


async def test_the_actor_is_the_caller_the_token_names(
    client: httpx.AsyncClient, world: FakeWorld, audit_log: InMemoryAuditLog
) -> None:
    await create_project(client)
    triggered = await client.post(
        "/api/v1/projects/ferrous/builds", json={}, headers=world.people.headers("alice")
    )
    assert triggered.status_code == 201
    [entry] = await entries(audit_log, actor="alice")
    alice = next(u for u in world.people.store.users.values() if u.username == "alice")
    assert (entry.actor_kind, entry.actor_id, entry.actor_name, entry.role) == (
        "user",
        alice.id,
        "alice",
        "developer",
    )
    assert entry.action == "POST /api/v1/projects/{project}/builds"
    assert [e.id for e in await entries(audit_log, actor=alice.id)] == [entry.id]


async def test_a_refused_caller_is_recorded_anonymous(
    client: httpx.AsyncClient, world: FakeWorld, audit_log: InMemoryAuditLog
) -> None:
    await create_project(client)
    viewer = await client.post(
        "/api/v1/projects/ferrous/builds", json={}, headers=world.people.headers("viewer")
    )
    nobody = await client.post(
        "/api/v1/projects/ferrous/builds", json={}, headers={"Authorization": "Bearer fpt_nope"}
    )
    assert (viewer.status_code, nobody.status_code) == (403, 401)
    refused_nobody, refused_viewer, _ = await entries(audit_log)
    assert (refused_viewer.actor_name, refused_viewer.result) == ("viewer", 403)
    assert (refused_nobody.anonymous, refused_nobody.result) == (True, 401)


async def test_webhooks_are_recorded_with_their_forge_as_actor(
    app: FastAPI, client: httpx.AsyncClient, world: FakeWorld, audit_log: InMemoryAuditLog
) -> None:
    def refuse(command: Any) -> None:
        raise WebhookSignatureInvalid("the signature does not match")

    world.receive_webhook = refuse  # type: ignore[attr-defined]
    await create_project(client, "hello")
    async with client_at(app, "192.0.2.30") as forge:  # a forge has no account
        answer = await forge.post("/api/v1/hooks/github/hello", content=b"{}")
    assert answer.status_code == 401
    [entry] = await entries(audit_log, action_prefix="POST /api/v1/hooks/")
    assert entry.action == "POST /api/v1/hooks/{forge}/{project}"
    assert entry.target == {"forge": "github", "project": "hello"}
    assert (entry.actor_kind, entry.actor_name) == ("webhook", "github")
    assert entry.result == answer.status_code


async def test_a_login_route_is_attributed_to_the_attempted_username(
    app: FastAPI, audit_log: InMemoryAuditLog
) -> None:
    """The login route's side of the contract: it sets ``audit_actor`` and calls the
    throttle; a route standing in for it here shows what the log then holds."""

    @app.post("/test/login")
    async def login(request: Request, body: dict[str, str]) -> dict[str, str]:
        request.state.audit_actor = body["username"]
        await request.app.state.login_throttle.check(body["username"], request.state.client_ip)
        raise InvalidCredentials("wrong username or password")

    async with client_at(app, "198.51.100.9") as client:
        answer = await client.post("/test/login", json={"username": "root"})
    assert answer.status_code == 401, answer.text
    [entry] = await entries(audit_log)
    assert (entry.action, entry.result) == ("POST /test/login", 401)
    assert (entry.actor_kind, entry.actor_id, entry.actor_name) == ("user", None, "root")
    assert entry.source_ip == "198.51.100.9"


async def test_a_nul_in_what_is_recorded_is_replaced_so_that_postgresql_keeps_it(
    app: FastAPI, audit_log: InMemoryAuditLog
) -> None:
    @app.post("/test/login/{name}")
    async def login(request: Request, name: str, body: dict[str, str]) -> None:
        request.state.audit_actor = body["username"]
        raise InvalidCredentials("wrong username or password")

    async with client_at(app, "198.51.100.9") as client:
        answer = await client.post("/test/login/a%00b", json={"username": "ro\x00ot"})
    assert answer.status_code == 401, answer.text
    [entry] = await entries(audit_log)
    assert entry.actor_name == "ro\ufffdot"
    assert dict(entry.target) == {"name": "a\ufffdb"}


async def test_the_address_behind_a_trusted_proxy_is_the_forwarded_one(
    app: FastAPI, world: FakeWorld, audit_log: InMemoryAuditLog
) -> None:
    forwarded = {"X-Forwarded-For": "192.0.2.50, 10.1.2.3"}
    admin = world.people.headers()
    async with client_at(app, "10.0.0.1", admin) as proxied:  # a trusted proxy, behind another
        await create_project(proxied, "a")
        await proxied.post("/api/v1/projects/a/builds", json={}, headers=forwarded)
    async with client_at(app, "203.0.113.7", admin) as direct:  # not a proxy: its header lies
        await direct.post("/api/v1/projects/a/builds", json={}, headers=forwarded)
    direct_entry, proxied_entry, project = await entries(audit_log)
    assert project.source_ip == "10.0.0.1"  # no header: the proxy itself
    assert proxied_entry.source_ip == "192.0.2.50"
    assert direct_entry.source_ip == "203.0.113.7"


async def test_a_crash_is_recorded_as_500(
    app: FastAPI, world: FakeWorld, audit_log: InMemoryAuditLog
) -> None:
    def crash(command: Any) -> None:
        raise RuntimeError("boom")

    world.create_project = crash  # type: ignore[method-assign]
    with capture_logs():  # the crash's log line, not rendered
        async with client_at(
            app, "203.0.113.7", world.people.headers(), raise_app_exceptions=False
        ) as client:
            answer = await client.post("/api/v1/projects", json={"name": "x", "repo_url": "/x.git"})
    assert answer.status_code == 500
    [entry] = await entries(audit_log)
    assert (entry.action, entry.result) == ("POST /api/v1/projects", 500)


async def test_a_failing_audit_log_does_not_fail_the_request(world: FakeWorld) -> None:
    """The change is made by then: the caller gets its answer, the log says what is missing."""

    class BrokenAuditLog(InMemoryAuditLog):
        async def record(self, entry: AuditEntry) -> None:
            raise StorageError("the database is away")

    app = create_app(world.services(audit_log=BrokenAuditLog()))
    with capture_logs() as logs:
        async with client_at(app, "203.0.113.7", world.people.headers()) as client:
            project = await create_project(client)
    assert project["name"] == "ferrous"
    [failure] = [entry for entry in logs if entry["event"] == "audit_write_failed"]
    assert (failure["action"], failure["result"]) == ("POST /api/v1/projects", 201)


async def test_the_listing_filters_and_pages_newest_first(
    client: httpx.AsyncClient, world: FakeWorld, audit_log: InMemoryAuditLog
) -> None:
    start = datetime.now(UTC) - timedelta(seconds=1)
    for n in range(5):
        await create_project(client, f"p{n}")
    await client.post("/api/v1/projects", json={"name": "p0", "repo_url": "/srv/git/p0.git"})
    await client.post("/api/v1/projects/p1/builds", json={}, headers=world.people.headers("alice"))

    page = (await client.get("/api/v1/audit", params={"limit": 3})).json()
    assert [item["action"] for item in page["items"]] == [
        "POST /api/v1/projects/{project}/builds",
        "POST /api/v1/projects",
        "POST /api/v1/projects",
    ]
    assert page["items"][1]["result"] == 409
    assert page["items"][0]["target"] == {"project": "p1"}
    assert page["items"][0]["at"].endswith("Z")
    seen = [item["id"] for item in page["items"]]
    while page["next_cursor"]:
        page = (
            await client.get("/api/v1/audit", params={"limit": 3, "cursor": page["next_cursor"]})
        ).json()
        seen += [item["id"] for item in page["items"]]
    assert len(seen) == len(set(seen)) == 7

    def listed(**params: Any) -> Any:
        return client.get("/api/v1/audit", params=params)

    assert [i["actor_name"] for i in (await listed(actor="alice")).json()["items"]] == ["alice"]
    assert len((await listed(result=409)).json()["items"]) == 1
    assert len((await listed(action="POST /api/v1/projects/")).json()["items"]) == 1
    assert len((await listed(action="POST /api/v1/projects")).json()["items"]) == 7
    assert len((await listed(since=start.isoformat())).json()["items"]) == 7
    assert (await listed(until=start.isoformat())).json()["items"] == []
    naive = start.replace(tzinfo=None).isoformat()  # taken as UTC
    assert len((await listed(since=naive)).json()["items"]) == 7
    # the listing itself changed nothing and is not recorded
    assert len((await listed()).json()["items"]) == 7


async def test_bad_listing_parameters(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/api/v1/audit", params={"cursor": "nonsense!"}), 404)
    assert_problem(await client.get("/api/v1/audit", params={"result": 42}), 422)
    assert_problem(await client.get("/api/v1/audit", params={"limit": 0}), 422)


async def test_a_server_without_an_audit_log_says_so(world: FakeWorld) -> None:
    app = create_app(world.services())
    async with client_at(app, "203.0.113.7", world.people.headers()) as client:
        await create_project(client)
        assert_problem(await client.get("/api/v1/audit"), 404)


def test_the_log_is_append_only(app: FastAPI) -> None:
    """No route changes or removes entries, and neither port nor adapters could."""
    audit_routes = {r: p for r, p in route_permissions(app).items() if "/audit" in r}
    assert audit_routes == {"GET /api/v1/audit": ["audit:read"]}
    port_methods = {
        name for name, _ in inspect.getmembers(AuditLog, inspect.isfunction) if name[0] != "_"
    }
    assert port_methods == {"record", "query"}
    for adapter in (InMemoryAuditLog, SqlAuditLog):
        public = {name for name in vars(adapter) if not name.startswith("_")}
        assert public == {"record", "query"}, adapter
