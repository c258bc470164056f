"""The agent protocol client against the real app: retries, typed errors, no token in logs."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from ferrous.agent.remote.client import (
    AgentClient,
    AgentProtocolError,
    LeaseLost,
    RetryPolicy,
    ServerUnavailable,
    Unauthorized,
)
from ferrous.agent.remote.platform_info import platform_info
from tests.unit.agent.remote.conftest import REGISTRATION_TOKEN, Server, bound_socket, make_repo

FAST = RetryPolicy(initial=0.02, max_delay=0.1)


async def test_a_server_that_is_briefly_down_is_waited_for(tmp_path: Path) -> None:
    sock = bound_socket()  # bound, not listening: connections are refused
    host, port = sock.getsockname()[:2]
    client = AgentClient(f"http://{host}:{port}", retry=FAST)
    with capture_logs() as logs:
        call = asyncio.create_task(
            client.register(REGISTRATION_TOKEN, name="a1", platform=platform_info())
        )
        await asyncio.sleep(0.5)
        assert not call.done()
        server = Server(tmp_path)
        async with server.serve(sock):
            credentials = await asyncio.wait_for(call, 5)
            assert await client.heartbeat([]) == []
    await client.aclose()

    agent = server.store.agents[credentials.agent_id]
    assert (agent.name, agent.platform["version"], agent.platform["cpus"] >= 1) == (
        "a1",
        "0.1.0",
        True,
    )
    retries = [e for e in logs if e["event"] == "agent_request_retry"]
    assert len(retries) >= 3
    assert {e["error"] for e in retries} == {"ConnectError"}
    assert credentials.token not in str(logs) + repr(client) + repr(credentials)
    assert REGISTRATION_TOKEN not in str(logs)


async def test_5xx_answers_are_retried(server: Server) -> None:
    client = AgentClient(server.url, retry=FAST)
    await client.register(REGISTRATION_TOKEN, name="a1")
    server.recorder.down = True
    call = asyncio.create_task(client.heartbeat([]))
    await asyncio.sleep(0.3)
    server.recorder.down = False
    assert await asyncio.wait_for(call, 5) == []
    await client.aclose()
    beats = [p for _, p in server.recorder.calls if p.endswith("/heartbeat")]
    assert len(beats) >= 3


async def test_it_gives_up_after_a_while(server: Server) -> None:
    client = AgentClient(
        server.url, retry=RetryPolicy(initial=0.02, max_delay=0.05, give_up_after=0.3)
    )
    await client.register(REGISTRATION_TOKEN, name="a1")
    server.recorder.down = True
    started = time.monotonic()
    with pytest.raises(ServerUnavailable, match="HTTP 503"):
        await client.claim()
    assert 0.25 < time.monotonic() - started < 1.0
    await client.aclose()


async def test_refusals_are_typed_and_not_retried(server: Server, tmp_path: Path) -> None:
    stranger = AgentClient(server.url, token="fra_nobody", retry=FAST)
    with pytest.raises(Unauthorized):
        await stranger.heartbeat([])
    with pytest.raises(Unauthorized):
        await stranger.register("wrong", name="a1")
    with pytest.raises(AgentProtocolError) as invalid:
        await stranger.register(REGISTRATION_TOKEN, name="")
    assert invalid.value.status == 422
    await stranger.aclose()
    assert len(server.recorder.calls) == 3

    build = await server.trigger(make_repo(tmp_path / "repo", "job:\n  script: [echo]\n"))
    job_id = server.job_id(build.id, "job")
    client = AgentClient(server.url, retry=FAST)
    await client.register(REGISTRATION_TOKEN, name="a2")
    with pytest.raises(LeaseLost) as not_ours:  # pending, not leased to this agent
        await client.append_log(job_id, 0, b"hello\n")
    assert (not_ours.value.status, not_ours.value.size) == (409, 0)
    with pytest.raises(LeaseLost):
        await client.complete(job_id, 1, 0, None)
    claimed = await client.claim()
    assert claimed is not None
    assert claimed["job_id"] == job_id
    assert await client.append_log(job_id, 0, b"hello\n") == 6
    assert await client.append_log(job_id, 0, b"hello\n") == 6  # a repeat is accepted once
    with pytest.raises(LeaseLost) as gap:
        await client.append_log(job_id, 10, b"gap\n")
    assert gap.value.size == 6
    assert await client.complete(job_id, 1, 0, None) == "success"
    # The same report again (its answer was lost) is accepted once; a different one is not.
    assert await client.complete(job_id, 1, 0, None) == "success"
    with pytest.raises(LeaseLost):
        await client.complete(job_id, 1, 3, "script_failure")
    await client.aclose()
    assert server.log(job_id) == b"hello\n"
