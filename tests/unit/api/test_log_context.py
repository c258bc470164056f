"""The ids a request's log lines carry: the request id, the calling agent's id, the ids of
the command the bus handles; and nothing of them left behind once the request is over."""

from __future__ import annotations

from typing import Any

import httpx
import structlog
from structlog.testing import capture_logs

from ferrous.api.log_context import bind_log_ids, request_log_context
from ferrous.application import commands as c
from tests.unit.api.conftest import register_agent
from tests.unit.api.fakes import FakeWorld

AGENT = "/api/v1/agent"
log = structlog.get_logger("ferrous.tests")


def logging_bus(world: FakeWorld) -> None:
    """The fake bus logs each command it handles, as a use case would."""
    handle = world.handle

    async def logged(command: c.Command) -> Any:
        log.info("command_handled", command=type(command).__name__)
        return await handle(command)

    world.handle = logged  # type: ignore[method-assign]  # wrap the fake, for this test


async def test_an_agents_request_names_the_request_and_the_agent(
    client: httpx.AsyncClient, world: FakeWorld
) -> None:
    auth = await register_agent(client)
    logging_bus(world)
    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        response = await client.post(
            f"{AGENT}/heartbeat", json={"running": []}, headers={**auth, "X-Request-ID": "r-1"}
        )
    assert response.status_code == 200, response.text
    [line] = logs
    assert line["request_id"] == "r-1"
    [agent_id] = world.queries.agents
    assert line["agent_id"] == agent_id
    # the request's bindings ended with it (the test client runs the app in this task)
    assert structlog.contextvars.get_contextvars() == {}


async def test_a_request_id_is_made_when_the_caller_sends_none(
    client: httpx.AsyncClient, world: FakeWorld
) -> None:
    logging_bus(world)
    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        response = await client.post(
            "/api/v1/projects", json={"name": "ferrous", "repo_url": "/srv/git/ferrous.git"}
        )
    assert response.status_code == 201
    assert logs[0]["request_id"] == response.headers["x-request-id"]
    assert "agent_id" not in logs[0]


def test_the_request_context_puts_back_what_it_found() -> None:
    structlog.contextvars.bind_contextvars(outer="kept")
    try:
        with request_log_context("r-2"):
            bind_log_ids(agent_id="a-1", build_id=None)
            assert structlog.contextvars.get_contextvars() == {
                "outer": "kept",
                "request_id": "r-2",
                "agent_id": "a-1",
            }
        assert structlog.contextvars.get_contextvars() == {"outer": "kept"}
    finally:
        structlog.contextvars.clear_contextvars()
