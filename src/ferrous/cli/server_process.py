"""What ``ferrous serve`` does once its settings are read: kept apart so that the other
commands do not import asyncio, uvicorn and the server at start-up.

With a certificate and key (``--tls-cert``/``--tls-key``) the API is HTTPS only, TLS 1.2
or newer. The embedded agents then reach it through a second, plain-HTTP listener on
127.0.0.1 at a free port, serving the same app, that only they are told about: they need
no certificate that names the loopback address, and loopback traffic never leaves the
machine. Uvicorn's own reading of ``X-Forwarded-For`` is off: the API decides which proxies
to believe (``FERROUS_TRUSTED_PROXIES``).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import ssl
import sys
from collections.abc import Iterator
from typing import Any


def run_server(settings: object) -> None:
    from ferrous.domain.errors import ConfigInvalid

    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_serve(settings))
    except ConfigInvalid as exc:  # settings only the app checks (CORS origins, proxies)
        sys.stderr.write(f"ferrous: {exc.message}\n")
        raise SystemExit(1) from exc


def _quiet_server(uvicorn: Any, config: Any) -> Any:
    """A uvicorn server that leaves SIGINT/SIGTERM to us: agents must stop before it does."""

    class Web(uvicorn.Server):  # type: ignore[misc]  # uvicorn is imported lazily, as Any
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    return Web(config)


def _web_config(uvicorn: Any, app: Any, host: str, port: int, tls: tuple[str, str] | None) -> Any:
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        lifespan="off",
        proxy_headers=False,
        ssl_certfile=tls[0] if tls else None,
        ssl_keyfile=tls[1] if tls else None,
        # Long-polling claims would hold a shutdown for their whole timeout: cut them short.
        timeout_graceful_shutdown=2,
    )
    config.load()  # builds the SSL context, which the server then uses as it is
    if config.ssl is not None:
        config.ssl.minimum_version = ssl.TLSVersion.TLSv1_2
    return config


def tls_files(settings: Any) -> tuple[str, str] | None:
    """The certificate and key paths, or None without TLS; ConfigInvalid if unusable."""
    from ferrous.domain.errors import ConfigInvalid

    cert, key = settings.tls_cert, settings.tls_key
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        raise ConfigInvalid("TLS needs both a certificate and its key (--tls-cert, --tls-key)")
    for path in (cert, key):
        if not path.is_file():
            raise ConfigInvalid(f"TLS: {path} is not a readable file")
    return str(cert), str(key)


async def _start(web: Any, task: asyncio.Task[None]) -> str | None:
    """The listener's URL once it accepts connections; None if it stopped (a bind error)."""
    while not web.started:
        if task.done():
            await task  # surfaces the bind error
            return None
        await asyncio.sleep(0.02)
    host, port = web.servers[0].sockets[0].getsockname()[:2]
    scheme = "https" if web.config.ssl is not None else "http"
    return f"{scheme}://{host}:{port}"


async def _serve(settings: object) -> None:
    import uvicorn

    from ferrous.agent.remote.embedded import run_embedded_agents
    from ferrous.api.app import create_app
    from ferrous.api.wiring import api_services
    from ferrous.application.bootstrap import bootstrap
    from ferrous.infrastructure.settings import Settings

    assert isinstance(settings, Settings)
    tls = tls_files(settings)
    server = await bootstrap(settings)
    app = create_app(api_services(server))
    web = _quiet_server(uvicorn, _web_config(uvicorn, app, settings.host, settings.port, tls))
    listeners = [web]
    if tls and settings.agents:  # the embedded agents' own plain listener, on loopback
        listeners.append(_quiet_server(uvicorn, _web_config(uvicorn, app, "127.0.0.1", 0, None)))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    server.start()
    web_tasks = [asyncio.create_task(listener.serve()) for listener in listeners]
    urls = [
        await _start(listener, task) for listener, task in zip(listeners, web_tasks, strict=True)
    ]
    if None in urls:
        for listener in listeners:
            listener.should_exit = True
        await asyncio.gather(*web_tasks, return_exceptions=True)
        await server.stop()
        return
    url, agents_url = urls[0], urls[-1]
    assert url is not None
    assert agents_url is not None
    sys.stdout.write(f"Ferrous CI listening on {url} (data in {settings.data_dir})\n")
    sys.stdout.flush()
    agents_task = None
    if settings.agents:
        agents_task = asyncio.create_task(
            run_embedded_agents(
                agents_url,
                server.registration_token,
                settings.agents,
                settings.data_dir / "agents",
                settings.agent_labels,
            )
        )
    await stop.wait()
    server.signals.close()  # long-polls and live logs answer now: the listeners close at once
    if agents_task is not None:
        agents_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await agents_task
    for listener in listeners:
        listener.should_exit = True
    await asyncio.gather(*web_tasks)
    await server.stop()
