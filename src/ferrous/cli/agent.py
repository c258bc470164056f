"""``ferrous agent``: a remote agent that runs a server's jobs on this machine.

It registers once with a registration token (``ferrous agent-token create``) and keeps its
identity (agent id and agent token) in ``WORK_DIR/agent.json``, readable by its owner only; a
restart reuses it and does not register again. Several ``--server`` URLs (comma-separated)
are tried in turn when one does not answer. The first SIGTERM (or Ctrl-C) stops claiming and
lets the running jobs finish; a second one cancels them (they are reported as
``runner_system_failure``).
``--executor sandbox`` runs every job inside bubblewrap (``--no-network`` also cuts its
network); the agent refuses to start where the sandbox cannot run.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

HELP = "Run a remote agent: register with a server (once) and run its jobs here."


def agent_command(
    server: Annotated[
        str, typer.Option("--server", help="Server URL; several, comma-separated, for failover.")
    ],
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            envvar="FERROUS_AGENT_REGISTRATION_TOKEN",
            help="A registration token from `ferrous agent-token create` (or the server's "
            "bootstrap token); needed only to register.",
        ),
    ] = None,
    labels: Annotated[str, typer.Option(help="Labels, comma-separated: a,b.")] = "",
    capacity: Annotated[int, typer.Option(min=1, help="Jobs run at once.")] = 1,
    work_dir: Annotated[
        Path, typer.Option("--work-dir", help="Workspaces, git cache and agent.json.")
    ] = Path(".ferrous-agent"),
    name: Annotated[str | None, typer.Option(help="Name shown by the server.")] = None,
    heartbeat_interval: Annotated[
        float, typer.Option(min=0.1, help="Seconds between heartbeats.", hidden=True)
    ] = 1.0,
    kill_grace: Annotated[
        float, typer.Option(min=0.0, help="Seconds a canceled job gets before SIGKILL.")
    ] = 5.0,
    executor: Annotated[
        str,
        typer.Option(
            metavar="shell|sandbox",
            help="shell: jobs run as plain processes (trusted code); sandbox: in bubblewrap.",
        ),
    ] = "shell",
    network: Annotated[
        bool, typer.Option("--network/--no-network", help="Sandbox only: give jobs a network.")
    ] = True,
) -> None:
    from ferrous.infrastructure.logging import configure_logging

    urls = [url.strip() for url in server.split(",") if url.strip()]
    if not urls:
        raise typer.BadParameter("give at least one URL", param_hint="--server")
    from ferrous.agent.executor_choice import ExecutorChoice

    try:
        choice = ExecutorChoice.parse(executor, network=network)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--executor") from exc
    problem = choice.problem()
    if problem is not None:
        raise typer.BadParameter(problem, param_hint="--executor")
    configure_logging(
        os.environ.get("FERROUS_LOG_LEVEL", "info"), os.environ.get("FERROUS_LOG_FORMAT", "auto")
    )
    from ferrous.cli.agent_process import run_agent_process

    code = run_agent_process(
        urls=urls,
        token=token,
        labels=tuple(part.strip() for part in labels.split(",") if part.strip()),
        capacity=capacity,
        work_dir=work_dir.absolute(),
        name=name,
        heartbeat_interval=heartbeat_interval,
        kill_grace=kill_grace,
        executor=choice,
    )
    raise typer.Exit(code)
