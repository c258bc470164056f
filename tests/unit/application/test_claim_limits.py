"""The claim tells the agent the server's cap on unpacking, and the agent reads it back.

The payload comes from the real claim (``job_payload`` through the bus) and is read by the
agent's ``Assignment.parse``: a server without the cap, or an older one that sends no
``limits`` at all, means no cap; a value the agent cannot read refuses the job.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from ferrous.agent.remote.assignment import Assignment
from tests.unit.application.conftest import World

PIPELINE = "job:\n  script: [make]\n"


async def claimed(world: World, max_unpacked_bytes: int | None) -> dict[str, Any]:
    world.bus.deps = replace(world.bus.deps, max_unpacked_bytes=max_unpacked_bytes)
    await world.trigger(await world.project(PIPELINE))
    payload = await world.claim(await world.agent())
    assert payload is not None
    return payload


async def test_the_claim_carries_the_servers_cap(world: World) -> None:
    payload = await claimed(world, 4096)
    assert payload["limits"] == {"max_unpacked_bytes": 4096}
    assert Assignment.parse(payload).max_unpacked_bytes == 4096


async def test_no_cap_on_the_server_is_no_cap_on_the_agent(world: World) -> None:
    payload = await claimed(world, None)
    assert payload["limits"] == {"max_unpacked_bytes": None}
    assert Assignment.parse(payload).max_unpacked_bytes is None


async def test_an_older_server_without_limits_means_no_cap(world: World) -> None:
    payload = await claimed(world, 4096)
    del payload["limits"]
    assignment = Assignment.parse(payload)
    assert assignment.max_unpacked_bytes is None
    assert assignment.name == "job"
    assert Assignment.parse({**payload, "limits": {}}).max_unpacked_bytes is None
    future = {"max_unpacked_bytes": 10, "max_files": 3}  # caps it does not know yet: ignored
    assert Assignment.parse({**payload, "limits": future}).max_unpacked_bytes == 10


@pytest.mark.parametrize("value", [0, -1, "4096", 1.5, True, [1]])
async def test_an_unreadable_cap_refuses_the_job(world: World, value: object) -> None:
    payload = await claimed(world, 4096)
    with pytest.raises(ValueError, match="max_unpacked_bytes"):
        Assignment.parse({**payload, "limits": {"max_unpacked_bytes": value}})
