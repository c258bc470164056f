"""The agents inside ``ferrous serve``: ordinary agents that talk to their own server.

They register over HTTP like any remote agent (the loopback is the only difference), so
there is one code path for claiming, logs, artifacts, caches and results (DESIGN §5). Each
has capacity 1 and its own folder ``work_dir/embedded-<n>``; they share
``work_dir/git-cache``, so a repository crosses the network once for all of them.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from ferrous.agent.remote.client import AgentClient
from ferrous.agent.remote.platform_info import platform_info
from ferrous.agent.remote.worker import HEARTBEAT_INTERVAL, AgentWorker


async def run_embedded_agents(
    server_url: str,
    registration_token: str,
    count: int,
    work_dir: Path,
    labels: tuple[str, ...] = (),
    *,
    heartbeat_interval: float = HEARTBEAT_INTERVAL,
    kill_grace: float = 5.0,
) -> None:
    """Register ``count`` agents and run them until cancelled (which cancels their jobs).

    Raises ``Unauthorized`` if the server refuses the registration token, and whatever a
    worker raises (the others are stopped first).
    """
    clients = [AgentClient(server_url) for _ in range(count)]
    try:
        workers = []
        for n, client in enumerate(clients, start=1):
            name = f"embedded-{n}"
            await client.register(
                registration_token,
                name=name,
                labels=labels,
                capacity=1,
                platform=platform_info(embedded=True),
            )
            workers.append(
                AgentWorker(
                    client,
                    capacity=1,
                    work_dir=work_dir / name,
                    labels=labels,
                    name=name,
                    heartbeat_interval=heartbeat_interval,
                    kill_grace=kill_grace,
                )
            )
        async with asyncio.TaskGroup() as group:
            for worker in workers:
                group.create_task(worker.run(), name=worker.name)
    finally:
        await asyncio.gather(*(client.aclose() for client in clients), return_exceptions=True)
