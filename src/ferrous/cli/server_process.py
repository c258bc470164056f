"""What ``ferrous serve`` does once its settings are read: kept apart so that the other
commands do not import asyncio, uvicorn and the server at start-up."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Iterator
from typing import Any


def run_server(settings: object) -> None:
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(settings))


def _quiet_server(uvicorn: Any, config: Any) -> Any:
    """A uvicorn server that leaves SIGINT/SIGTERM to us: agents must stop before it does."""

    class Web(uvicorn.Server):  # type: ignore[misc]  # uvicorn is imported lazily, as Any
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    return Web(config)


async def _serve(settings: object) -> None:
    import uvicorn

    from ferrous.agent.remote.embedded import run_embedded_agents
    from ferrous.api.app import create_app
    from ferrous.api.wiring import api_services
    from ferrous.application.bootstrap import bootstrap
    from ferrous.infrastructure.settings import Settings

    assert isinstance(settings, Settings)
    server = await bootstrap(settings)
    app = create_app(api_services(server))
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        lifespan="off",
        # Long-polling claims would hold a shutdown for their whole timeout: cut them short.
        timeout_graceful_shutdown=2,
    )
    web = _quiet_server(uvicorn, config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    server.start()
    web_task = asyncio.create_task(web.serve())
    while not web.started:
        if web_task.done():
            await web_task  # surfaces the bind error
            return
        await asyncio.sleep(0.02)
    bound = web.servers[0].sockets[0].getsockname()
    url = f"http://{bound[0]}:{bound[1]}"
    sys.stdout.write(f"Ferrous CI listening on {url} (data in {settings.data_dir})\n")
    sys.stdout.flush()
    agents_task = None
    if settings.agents:
        agents_task = asyncio.create_task(
            run_embedded_agents(
                url,
                server.registration_token,
                settings.agents,
                settings.data_dir / "agents",
                settings.agent_labels,
            )
        )
    await stop.wait()
    if agents_task is not None:
        agents_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await agents_task
    web.should_exit = True
    await web_task
    await server.stop()
