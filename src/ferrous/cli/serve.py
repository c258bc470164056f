"""``ferrous serve``: the API, the scheduler and N embedded agents in one process.

The embedded agents speak the same HTTP protocol as remote ones, over loopback, so there is
one code path for both. SIGINT/SIGTERM stop the server cleanly: agents first (their running
jobs are canceled and reported), then the HTTP server, then the background loops.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

HELP = "Run the server: API, scheduler and embedded agents (SQLite in the data dir by default)."


def serve_command(
    port: Annotated[int | None, typer.Option(help="Port to listen on (0: any free port).")] = None,
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="Database, logs and caches.")
    ] = None,
    agents: Annotated[
        int | None, typer.Option(help="Embedded agents (default: CPU count; 0 for none).")
    ] = None,
    tls_cert: Annotated[
        Path | None,
        typer.Option("--tls-cert", help="Serve HTTPS with this PEM certificate (chain)."),
    ] = None,
    tls_key: Annotated[
        Path | None, typer.Option("--tls-key", help="The certificate's PEM private key.")
    ] = None,
) -> None:
    from ferrous.cli.client import fail
    from ferrous.domain.errors import ConfigInvalid
    from ferrous.infrastructure.logging import configure_logging
    from ferrous.infrastructure.settings import load_settings

    try:
        settings = load_settings(
            port=port,
            host=host,
            data_dir=data_dir,
            agents=agents,
            tls_cert=tls_cert,
            tls_key=tls_key,
        )
        from ferrous.cli.server_process import run_server, tls_files

        tls_files(settings)
    except ConfigInvalid as exc:
        raise fail(exc.message) from exc
    configure_logging(settings.log_level, settings.log_format)
    run_server(settings)
