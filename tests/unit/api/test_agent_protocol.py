"""The agent protocol: registration, token auth, the claim long-poll, heartbeat, log, complete."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from ferrous.api.app import create_app
from ferrous.application.commands import AppendLog, ClaimJob, CompleteJob, Heartbeat, RegisterAgent
from tests.unit.api.conftest import assert_problem, create_project, register_agent, trigger
from tests.unit.api.fakes import FakeWorld

AGENT = "/api/v1/agent"


def payload(job_id: str) -> dict[str, Any]:
    return {
        "job_id": job_id,
        "build_id": "build-1",
        "attempt": 1,
        "name": "test 1",
        "repo_url": "/srv/git/ferrous.git",
        "sha": "a" * 40,
        "ref": "main",
        "spec": {"script": ["make test"]},
        "variables": {"CI_JOB_ID": job_id},
        "timeout": None,
        "dependencies": [],
    }


async def client_for(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://test")


async def test_register_with_the_registration_token(
    client: httpx.AsyncClient, world: FakeWorld
) -> None:
    response = await client.post(
        f"{AGENT}/register",
        json={
            "token": "reg-secret",
            "name": "builder-01",
            "labels": ["linux", "docker"],
            "capacity": 4,
            "platform": {"os": "linux", "arch": "x86_64"},
        },
    )

    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"agent_id", "token"}
    assert world.commands == [
        RegisterAgent(
            name="builder-01",
            labels=("linux", "docker"),
            capacity=4,
            platform={"os": "linux", "arch": "x86_64"},
        )
    ]


async def test_register_refuses_a_wrong_token(client: httpx.AsyncClient, world: FakeWorld) -> None:
    response = await client.post(f"{AGENT}/register", json={"token": "guess", "name": "x"})

    assert_problem(response, 401)
    assert [getattr(cmd, "registration_token", None) for cmd in world.commands] == ["guess"]
    assert world.queries.agents == {}
    invalid = await client.post(f"{AGENT}/register", json={"token": "reg-secret", "capacity": 0})
    fields = {e["field"] for e in assert_problem(invalid, 422)["errors"]}
    assert fields == {"body.name", "body.capacity"}


async def test_any_other_token_is_spent_as_an_admin_created_registration_token(
    client: httpx.AsyncClient, world: FakeWorld
) -> None:
    world.registration_tokens.add("frt_admin-made")
    response = await client.post(
        f"{AGENT}/register", json={"token": "frt_admin-made", "name": "builder-02"}
    )

    assert response.status_code == 201, response.text
    [command] = world.commands
    assert isinstance(command, RegisterAgent)
    assert command.registration_token == "frt_admin-made"
    assert "frt_admin-made" not in repr(command)  # commands may be logged


async def test_without_a_bootstrap_token_only_registration_tokens_register(
    world: FakeWorld,
) -> None:
    world.registration_tokens.add("frt_admin-made")
    app = create_app(world.services(agent_registration_token=""))
    async with await client_for(app) as client:
        refused = await client.post(f"{AGENT}/register", json={"token": "x", "name": "x"})
        joined = await client.post(
            f"{AGENT}/register", json={"token": "frt_admin-made", "name": "y"}
        )

    assert_problem(refused, 401)
    assert joined.status_code == 201, joined.text


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer fra_wrong"}, {"Authorization": "Basic Zm9vOmJhcg=="}],
)
@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/claim", None),
        ("/heartbeat", {"running": []}),
        ("/jobs/j/log?offset=0", None),
        ("/jobs/j/complete", {"attempt": 1, "exit_code": 0}),
    ],
)
async def test_agent_calls_need_the_agent_token(
    client: httpx.AsyncClient, world: FakeWorld, headers: dict[str, str], path: str, body: Any
) -> None:
    response = await client.post(f"{AGENT}{path}", json=body, headers=headers)

    assert_problem(response, 401)
    assert response.headers["www-authenticate"] == "Bearer"
    assert world.commands == []


async def test_the_agent_token_lookup_is_cached(
    client: httpx.AsyncClient, world: FakeWorld
) -> None:
    auth = await register_agent(client)

    for _ in range(3):
        response = await client.post(f"{AGENT}/heartbeat", json={"running": []}, headers=auth)
        assert response.status_code == 200

    assert world.lookups == 1


async def test_claim_answers_a_job_at_once(client: httpx.AsyncClient, world: FakeWorld) -> None:
    auth = await register_agent(client)
    world.claimable.append(payload("job-1"))

    response = await client.post(f"{AGENT}/claim", headers=auth)

    assert response.status_code == 200
    assert response.json() == payload("job-1")
    agent_id = next(iter(world.queries.agents))
    assert world.commands[-1] == ClaimJob(agent_id=agent_id)


async def test_claim_answers_204_after_the_timeout(world: FakeWorld) -> None:
    app = create_app(world.services(claim_timeout=0.05))
    async with await client_for(app) as client:
        auth = await register_agent(client)
        started = time.monotonic()
        response = await client.post(f"{AGENT}/claim", headers=auth)

    assert response.status_code == 204
    assert response.content == b""
    assert 0.04 < time.monotonic() - started < 1
    assert len([c for c in world.commands if isinstance(c, ClaimJob)]) == 2  # before and after
    assert world.waiter.waits
    assert world.waiter.waits[0] <= 0.05


async def test_claim_answers_as_soon_as_the_waiter_wakes(world: FakeWorld) -> None:
    app = create_app(world.services(claim_timeout=30))
    async with await client_for(app) as client:
        auth = await register_agent(client)
        request = asyncio.create_task(client.post(f"{AGENT}/claim", headers=auth))
        async with asyncio.timeout(2):
            while not world.waiter.waits:
                await asyncio.sleep(0.001)
        started = time.monotonic()
        world.claimable.append(payload("job-7"))
        world.waiter.wake()
        response = await request

    assert response.status_code == 200
    assert response.json()["job_id"] == "job-7"
    assert time.monotonic() - started < 1


async def test_a_stopping_server_ends_a_long_poll_at_once_without_a_job(
    world: FakeWorld,
) -> None:
    """Its listener closes without waiting for held claims; no job is leased meanwhile."""
    app = create_app(world.services(claim_timeout=30))
    async with await client_for(app) as client:
        auth = await register_agent(client)
        request = asyncio.create_task(client.post(f"{AGENT}/claim", headers=auth))
        async with asyncio.timeout(2):
            while not world.waiter.waits:
                await asyncio.sleep(0.001)
        claims = len([c for c in world.commands if isinstance(c, ClaimJob)])
        started = time.monotonic()
        world.claimable.append(payload("job-9"))
        world.waiter.closing = True
        world.waiter.wake()
        response = await request
        later = await client.post(f"{AGENT}/claim", headers=auth)
        ready = await client.get("/readyz")

    # 503 with Retry-After: an agent waits before it claims again (a 204 would have it claim
    # again at once, over and over, while the server finishes stopping)
    for answer in (response, later):
        assert_problem(answer, 503)
        assert answer.headers["Retry-After"] == "1"
    assert time.monotonic() - started < 1
    assert len([c for c in world.commands if isinstance(c, ClaimJob)]) == claims
    assert world.claimable == [payload("job-9")]
    assert (ready.status_code, ready.json()["checks"]["server"]) == (503, "stopping")


async def test_a_wake_up_during_the_claim_is_not_lost(world: FakeWorld) -> None:
    """The waiter listens before the claim reads, so a job queued meanwhile is seen."""
    original = world.handle

    async def claim_then_queue(command: Any) -> Any:
        result = await original(command)
        if isinstance(command, ClaimJob) and not world.claimable and result is None:
            world.claimable.append(payload("job-8"))  # queued right after the claim looked
            world.waiter.wake()
        return result

    world.handle = claim_then_queue  # type: ignore[method-assign]
    app = create_app(world.services(claim_timeout=30))
    async with await client_for(app) as client:
        auth = await register_agent(client)
        async with asyncio.timeout(2):
            response = await client.post(f"{AGENT}/claim", headers=auth)

    assert response.json()["job_id"] == "job-8"


@pytest.fixture
async def running(client: httpx.AsyncClient, world: FakeWorld) -> tuple[dict[str, str], str]:
    """An agent's auth header and the id of the job it runs."""
    auth = await register_agent(client)
    await create_project(client)
    job_id: str = (await trigger(client))["jobs"][0]["id"]
    world.claimable.append(payload(job_id))
    assert (await client.post(f"{AGENT}/claim", headers=auth)).status_code == 200
    return auth, job_id


async def test_heartbeat_names_the_jobs_to_cancel(
    client: httpx.AsyncClient, world: FakeWorld, running: tuple[dict[str, str], str]
) -> None:
    auth, job_id = running

    response = await client.post(
        f"{AGENT}/heartbeat", json={"running": [job_id, "job-gone"]}, headers=auth
    )

    assert response.json() == {"cancel": ["job-gone"]}
    assert isinstance(world.commands[-1], Heartbeat)
    assert world.commands[-1].running_job_ids == (job_id, "job-gone")


async def test_log_chunks_append_once_each(
    client: httpx.AsyncClient, world: FakeWorld, running: tuple[dict[str, str], str]
) -> None:
    auth, job_id = running
    url = f"{AGENT}/jobs/{job_id}/log"

    first = await client.post(url, params={"offset": 0}, content=b"hello ", headers=auth)
    repeated = await client.post(url, params={"offset": 0}, content=b"hello ", headers=auth)
    second = await client.post(url, params={"offset": 6}, content=b"world\n", headers=auth)

    assert [r.json() for r in (first, repeated, second)] == [{"size": 6}, {"size": 6}, {"size": 12}]
    assert world.logs.data[job_id] == b"hello world\n"
    assert world.commands[-1] == AppendLog(
        agent_id=world.commands[-1].agent_id, job_id=job_id, offset=6, data=b"world\n"
    )


async def test_a_log_gap_or_mismatch_is_409_with_the_size(
    client: httpx.AsyncClient, world: FakeWorld, running: tuple[dict[str, str], str]
) -> None:
    auth, job_id = running
    url = f"{AGENT}/jobs/{job_id}/log"
    await client.post(url, params={"offset": 0}, content=b"hello", headers=auth)

    gap = await client.post(url, params={"offset": 9}, content=b"x", headers=auth)
    mismatch = await client.post(url, params={"offset": 0}, content=b"HELLO", headers=auth)
    no_offset = await client.post(url, content=b"x", headers=auth)

    assert assert_problem(gap, 409)["size"] == 5
    assert assert_problem(mismatch, 409)["size"] == 5
    assert [e["field"] for e in assert_problem(no_offset, 422)["errors"]] == ["query.offset"]
    assert world.logs.data[job_id] == b"hello"


async def test_a_log_chunk_too_large_is_413(
    client: httpx.AsyncClient, running: tuple[dict[str, str], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    auth, job_id = running
    monkeypatch.setattr("ferrous.api.routers.agent_protocol.MAX_LOG_CHUNK", 4)

    response = await client.post(
        f"{AGENT}/jobs/{job_id}/log", params={"offset": 0}, content=b"12345", headers=auth
    )

    assert_problem(response, 413)


async def test_only_the_lease_holder_writes_and_completes(
    client: httpx.AsyncClient, world: FakeWorld, running: tuple[dict[str, str], str]
) -> None:
    _, job_id = running
    other = await register_agent(client, "builder-02")

    log = await client.post(
        f"{AGENT}/jobs/{job_id}/log", params={"offset": 0}, content=b"x", headers=other
    )
    late = await client.post(
        f"{AGENT}/jobs/{job_id}/complete", json={"attempt": 1, "exit_code": 0}, headers=other
    )

    assert assert_problem(log, 409)["size"] == 0
    assert "lease" in assert_problem(late, 409)["detail"]
    assert world.queries.jobs[job_id].status == "running"


async def test_complete_a_job(
    client: httpx.AsyncClient, world: FakeWorld, running: tuple[dict[str, str], str]
) -> None:
    auth, job_id = running

    response = await client.post(
        f"{AGENT}/jobs/{job_id}/complete",
        json={"attempt": 1, "exit_code": 2, "failure_reason": "script_failure"},
        headers=auth,
    )
    again = await client.post(
        f"{AGENT}/jobs/{job_id}/complete", json={"attempt": 1, "exit_code": 0}, headers=auth
    )

    assert response.status_code == 200
    assert response.json() == {"job_id": job_id, "status": "failed"}
    command = world.commands[-2]
    assert isinstance(command, CompleteJob)
    assert (command.attempt, command.exit_code, command.failure_reason) == (
        1,
        2,
        "script_failure",
    )
    assert_problem(again, 409)  # a late report is refused
    invalid = await client.post(
        f"{AGENT}/jobs/{job_id}/complete", json={"attempt": 0}, headers=auth
    )
    fields = {e["field"] for e in assert_problem(invalid, 422)["errors"]}
    assert fields == {"body.attempt", "body.exit_code"}
