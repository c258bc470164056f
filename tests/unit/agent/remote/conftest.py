"""A real server for the agent: the FastAPI app on the in-memory adapters, served by uvicorn.

The app runs the real bus, use cases and Build aggregate; sources come from a real git
repository made per test. ``Recorder`` wraps the app to see (and break) agent requests;
artifacts and caches are ``FakeFiles``' (the real endpoints have tests of their own).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ferrous.api.app import create_app
from ferrous.api.services import ApiServices
from ferrous.application import commands as c
from ferrous.application.dependencies import Dependencies, SystemClock
from ferrous.application.messagebus import MessageBus
from ferrous.application.signals import JobSignals
from ferrous.domain.build import Build
from ferrous.domain.errors import NotFound
from ferrous.domain.events import Event, JobQueued
from ferrous.infrastructure.git.source_repository import GitSourceRepository
from ferrous.infrastructure.memory import InMemoryQueries, InMemoryStore, memory_uow_factory
from tests.unit.agent.remote.fake_files import FakeFiles
from tests.unit.api.fakes import FakeFeed

REGISTRATION_TOKEN = "reg-secret"


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def make_repo(path: Path, pipeline: str, files: dict[str, str] | None = None) -> Path:
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "user.email", "dev@example.com")
    git(path, "config", "user.name", "Dev")
    (path / ".gitlab-ci.yml").write_text(pipeline)
    for name, text in (files or {}).items():
        (path / name).write_text(text)
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "initial")
    return path


class StoreLogs:
    def __init__(self, store: InMemoryStore) -> None:
        self.store = store

    async def read(self, job_id: str, start: int = 0, end: int | None = None) -> bytes:
        return self.store.logs.get(job_id, b"")[start:end]

    async def size(self, job_id: str) -> int:
        return len(self.store.logs.get(job_id, b""))


class Waiter:
    def __init__(self, signals: JobSignals) -> None:
        self.signals = signals

    async def wait(self, timeout: float) -> None:
        await self.signals.jobs_available.wait(timeout)

    @property
    def closing(self) -> bool:
        return self.signals.closing


@dataclass
class Recorder:
    """ASGI middleware: records agent calls; ``fail_log`` answers chosen log chunks with 503
    *after* the app stored them (the response was lost), ``down`` answers everything 503."""

    app: ASGIApp
    calls: list[tuple[str, str]] = field(default_factory=list)
    log_chunks: list[tuple[int, int]] = field(default_factory=list)  # (offset, length)
    fail_log: set[int] = field(default_factory=set)  # indexes into log_chunks
    down: bool = False
    in_flight_claims: int = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        self.calls.append((scope["method"], path))
        if self.down:
            await respond(send, 503, b'{"detail": "down"}')
            return
        if path.endswith("/log"):
            await self._log(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _log(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        query = dict(p.split("=", 1) for p in scope["query_string"].decode().split("&") if p)
        index = len(self.log_chunks)
        self.log_chunks.append((int(query.get("offset", -1)), len(body)))
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        if index in self.fail_log:

            async def swallow(message: Message) -> None:
                pass

            await self.app(scope, replay, swallow)
            await respond(send, 503, b'{"detail": "lost answer"}')
        else:
            await self.app(scope, replay, send)


async def respond(send: Send, status: int, body: bytes) -> None:
    headers = [(b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class Server:
    """The app, its store and bus; ``url`` once ``serve`` runs."""

    def __init__(self, tmp_path: Path, claim_timeout: float = 0.5) -> None:
        self.store = InMemoryStore()
        self.signals = JobSignals()
        self.bus = MessageBus(
            memory_uow_factory(self.store),
            Dependencies(clock=SystemClock(), sources=GitSourceRepository(tmp_path / "trees")),
        )

        async def wake(event: Event) -> None:
            self.signals.jobs_available.set()

        self.bus.subscribe(JobQueued, wake)
        services = ApiServices(
            bus=self.bus,
            queries=InMemoryQueries(self.store),
            logs_reader=StoreLogs(self.store),
            log_events=FakeFeed(),
            claim_waiter=Waiter(self.signals),
            agent_by_token_hash=self.agent_by_token_hash,
            agent_registration_token=REGISTRATION_TOKEN,
            claim_timeout=claim_timeout,
        )
        self.files = FakeFiles(tmp_path / "server-files", create_app(services))
        self.recorder = Recorder(self.files)
        self.url = ""

    async def agent_by_token_hash(self, token_hash: str) -> str | None:
        for agent in self.store.agents.values():
            if agent.token_hash == token_hash:
                return agent.id
        raise NotFound()

    @contextlib.asynccontextmanager
    async def serve(self, sock: socket.socket | None = None) -> AsyncIterator[str]:
        """uvicorn in this event loop, on ``sock`` or a free port of 127.0.0.1."""
        if sock is None:
            sock = bound_socket()
        config = uvicorn.Config(
            self.recorder,
            log_level="warning",
            lifespan="off",
            access_log=False,
            timeout_graceful_shutdown=1,
        )
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            if task.done():
                await task
            await asyncio.sleep(0.01)
        host, port = sock.getsockname()[:2]
        self.url = f"http://{host}:{port}"
        try:
            yield self.url
        finally:
            server.should_exit = True
            await task

    async def project(self, repo: Path, name: str = "demo") -> str:
        project = await self.bus.handle(c.CreateProject(name=name, repo_url=str(repo)))
        return str(next(p.id for p in self.store.pipelines.values() if p.project_id == project.id))

    async def trigger(self, repo: Path, name: str = "demo") -> Build:
        pipeline = next(
            (p.id for p in self.store.pipelines.values() if p.name == "default"), None
        ) or await self.project(repo, name)
        build: Build = await self.bus.handle(c.TriggerBuild(pipeline_id=pipeline))
        assert build.jobs, build.problems
        return build

    def build(self, build_id: str) -> Build:
        return self.store.builds[build_id]

    def job_id(self, build_id: str, name: str) -> str:
        return self.build(build_id).job_named(name).id

    def log(self, job_id: str) -> bytes:
        return self.store.logs.get(job_id, b"")

    async def finished(self, build_id: str, timeout: float = 20.0) -> Build:
        async with asyncio.timeout(timeout):
            while not self.build(build_id).status.is_finished:
                await asyncio.sleep(0.02)
        return self.build(build_id)


def bound_socket() -> socket.socket:
    """A socket bound to a free port of 127.0.0.1, not listening yet: connections to it are
    refused until uvicorn listens on it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    app = Server(tmp_path)
    async with app.serve():
        yield app
