"""What ``ferrous agent`` does once its options are read: kept apart so that the other
commands do not import asyncio and the agent's modules at start-up."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import typer

if TYPE_CHECKING:
    from ferrous.agent.executor_choice import ExecutorChoice
    from ferrous.agent.remote.client import AgentClient

IDENTITY_FILE = "agent.json"


def run_agent_process(
    *,
    urls: list[str],
    token: str | None,
    labels: tuple[str, ...],
    capacity: int,
    work_dir: Path,
    name: str | None,
    heartbeat_interval: float,
    kill_grace: float,
    executor: ExecutorChoice,
) -> int:
    code = 130
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C before the handlers are set
        code = asyncio.run(
            _run_agent(
                urls=urls,
                token=token,
                labels=labels,
                capacity=capacity,
                work_dir=work_dir,
                name=name or socket.gethostname(),
                heartbeat_interval=heartbeat_interval,
                kill_grace=kill_grace,
                executor=executor,
            )
        )
    return code


def _fail(message: str) -> NoReturn:
    sys.stderr.write(f"ferrous agent: {message}\n")
    raise typer.Exit(2)


def load_identity(path: Path) -> dict[str, Any] | None:
    """The saved identity (``agent_id``, ``token``, ...), or None if there is none yet."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        _fail(f"cannot read {path}: {exc}; delete it to register again")
    if not isinstance(data, dict) or not data.get("agent_id") or not data.get("token"):
        _fail(f"{path} holds no agent identity; delete it to register again")
    return data


def save_identity(path: Path, identity: dict[str, Any]) -> None:
    """Write ``identity`` atomically to ``path``, readable and writable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        os.fchmod(file.fileno(), 0o600)  # whatever the umask or a leftover file said
        json.dump(identity, file, indent=2)
        file.write("\n")
    os.replace(temp, path)


async def _identify(
    client: AgentClient,
    path: Path,
    *,
    token: str | None,
    name: str,
    labels: tuple[str, ...],
    capacity: int,
) -> dict[str, Any]:
    from ferrous.agent.remote.platform_info import platform_info

    identity = load_identity(path)
    if identity is not None:
        if [identity.get("labels"), identity.get("capacity")] != [list(labels), capacity]:
            sys.stderr.write(
                f"ferrous agent: registered with labels {identity.get('labels')} and capacity "
                f"{identity.get('capacity')}; the server keeps those (delete {path} to "
                "register again with new ones)\n"
            )
        return identity
    if not token:
        _fail("not registered yet: pass --token (or FERROUS_AGENT_REGISTRATION_TOKEN)")
    credentials = await client.register(
        token, name=name, labels=labels, capacity=capacity, platform=platform_info()
    )
    identity = {
        "agent_id": credentials.agent_id,
        "token": credentials.token,
        "name": name,
        "labels": list(labels),
        "capacity": capacity,
        "server": client.server_url,
    }
    save_identity(path, identity)
    return identity


async def _run_agent(
    *,
    urls: list[str],
    token: str | None,
    labels: tuple[str, ...],
    capacity: int,
    work_dir: Path,
    name: str,
    heartbeat_interval: float,
    kill_grace: float,
    executor: ExecutorChoice,
) -> int:
    from ferrous.agent.remote.client import (
        AgentClient,
        AgentCredentials,
        AgentProtocolError,
        Unauthorized,
    )
    from ferrous.agent.remote.worker import AgentWorker

    path = work_dir / IDENTITY_FILE
    async with AgentClient(urls) as client:
        try:
            identity = await _identify(
                client, path, token=token, name=name, labels=labels, capacity=capacity
            )
        except Unauthorized:
            sys.stderr.write("ferrous agent: the server refused the registration token\n")
            return 1
        except AgentProtocolError as exc:
            sys.stderr.write(f"ferrous agent: cannot register: {exc.message}\n")
            return 1
        client.use_credentials(AgentCredentials(str(identity["agent_id"]), str(identity["token"])))
        worker = AgentWorker(
            client,
            capacity=int(identity.get("capacity") or capacity),
            work_dir=work_dir / "builds",
            labels=tuple(identity.get("labels") or labels),
            name=str(identity.get("name") or name),
            heartbeat_interval=heartbeat_interval,
            kill_grace=kill_grace,
            executor=executor,
        )
        _on_signals(worker)
        sys.stdout.write(f"Ferrous agent {identity['agent_id']} running ({client.server_url})\n")
        sys.stdout.flush()
        try:
            await worker.run()
        except Unauthorized:
            sys.stderr.write(
                f"ferrous agent: the server refused the agent token stored in {path} (the "
                "agent was removed, or the server's data was reset); delete that file and "
                "start again with --token to register anew\n"
            )
            return 1
    return 0


def _on_signals(worker: Any) -> None:
    """First SIGTERM/SIGINT: stop claiming, let jobs finish; the second: cancel them."""
    loop = asyncio.get_running_loop()
    stops: list[asyncio.Task[None]] = []

    def stop() -> None:
        graceful = not stops
        sys.stderr.write(
            "ferrous agent: stopping after the running jobs (signal again to cancel them)\n"
            if graceful
            else "ferrous agent: canceling the running jobs\n"
        )
        stops.append(loop.create_task(worker.stop(graceful=graceful)))

    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # Windows
            loop.add_signal_handler(sig, stop)
