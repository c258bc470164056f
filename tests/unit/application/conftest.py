"""The application on its in-memory adapters: a bus, a clock to move, a real git repository.

Use cases are driven through ``bus.handle``, as the API and the scheduler drive them; tests
assert on the committed state (``store``) and on the events in the outbox.
"""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ferrous.application import commands as c
from ferrous.application.dependencies import Dependencies
from ferrous.application.messagebus import MessageBus
from ferrous.domain.build import Build, Job
from ferrous.domain.events import Event
from ferrous.domain.project import Project
from ferrous.infrastructure.git.source_repository import GitSourceRepository
from ferrous.infrastructure.memory import InMemoryStore, memory_uow_factory

T0 = datetime(2025, 1, 31, 12, 0, tzinfo=UTC)
LEASE_TIMEOUT = timedelta(seconds=60)
SERVER_URL = "http://ci.test"

TWO_STAGES = """
stages: [build, test]
compile:
  stage: build
  script: [make]
unit:
  stage: test
  script: [make test]
"""


class FakeClock:
    """The clock use cases read; tests move it."""

    def __init__(self, now: datetime = T0) -> None:
        self.current = now

    def now(self) -> datetime:
        return self.current

    def advance(self, **delta: float) -> datetime:
        self.current += timedelta(**delta)
        return self.current


class GitRepo:
    """A real repository in a temporary folder, changed with the git CLI."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True)
        self.git("init", "-q", "-b", "main")

    @property
    def url(self) -> str:
        return str(self.path)

    def git(self, *args: str) -> str:
        env = {
            **os.environ,
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_AUTHOR_NAME": "Dev",
            "GIT_AUTHOR_EMAIL": "dev@example.com",
            "GIT_COMMITTER_NAME": "Dev",
            "GIT_COMMITTER_EMAIL": "dev@example.com",
        }
        done = subprocess.run(
            ["git", "-C", str(self.path), *args],
            check=True,
            capture_output=True,
            text=True,
            env=env,
        )
        return done.stdout.strip()

    def commit(self, files: dict[str, str], message: str = "change") -> str:
        """Write ``files`` (path -> text), commit them, and return the new sha."""
        for name, text in files.items():
            target = self.path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)
        return self.git("rev-parse", "HEAD")


class World:
    """The bus and its store, with short ways to do what most tests need first."""

    def __init__(self, store: InMemoryStore, bus: MessageBus, clock: FakeClock, repo: GitRepo):
        self.store = store
        self.bus = bus
        self.clock = clock
        self.repo = repo

    # --- setting up ---------------------------------------------------------------------

    async def project(self, pipeline: str | None = TWO_STAGES, name: str = "demo") -> str:
        """A project on the repository with ``pipeline`` committed; its default pipeline's id."""
        if pipeline is not None:
            self.repo.commit({".gitlab-ci.yml": pipeline}, "pipeline")
        project: Project = await self.bus.handle(c.CreateProject(name=name, repo_url=self.repo.url))
        [pipeline_id] = [p.id for p in self.store.pipelines.values() if p.project_id == project.id]
        return pipeline_id

    async def trigger(self, pipeline_id: str, **fields: Any) -> Build:
        build: Build = await self.bus.handle(c.TriggerBuild(pipeline_id=pipeline_id, **fields))
        return self.build(build.id)

    async def agent(
        self, name: str = "agent", labels: tuple[str, ...] = (), capacity: int = 1
    ) -> str:
        agent, _token = await self.bus.handle(
            c.RegisterAgent(name=name, labels=labels, capacity=capacity)
        )
        return str(agent.id)

    async def claim(self, agent_id: str) -> dict[str, Any] | None:
        payload: dict[str, Any] | None = await self.bus.handle(c.ClaimJob(agent_id=agent_id))
        return payload

    async def finish(
        self, agent_id: str, payload: dict[str, Any], exit_code: int | None = 0, **kw: Any
    ) -> Job:
        job: Job = await self.bus.handle(
            c.CompleteJob(
                agent_id=agent_id,
                job_id=payload["job_id"],
                attempt=payload["attempt"],
                exit_code=exit_code,
                failure_reason=kw.get("failure_reason"),
            )
        )
        return job

    async def run(self, agent_id: str, exit_code: int | None = 0) -> dict[str, Any]:
        """Claim the next job and report ``exit_code`` for it; its payload."""
        payload = await self.claim(agent_id)
        assert payload is not None, "nothing to claim"
        await self.finish(agent_id, payload, exit_code)
        return payload

    # --- looking at the committed state -------------------------------------------------

    def build(self, build_id: str) -> Build:
        return self.store.builds[build_id]

    def job(self, build_id: str, name: str) -> Job:
        return self.store.builds[build_id].jobs[name]

    def statuses(self, build_id: str) -> str:
        """``"compile=success unit=pending"``: the committed jobs' statuses, in plan order."""
        jobs = self.store.builds[build_id].jobs.items()
        return " ".join(f"{name}={job.status}" for name, job in jobs)

    def events(self, kind: type[Event] | None = None) -> list[Any]:
        """The committed events, from the outbox, oldest first (optionally of one kind)."""
        found = [message.event() for message in self.store.outbox]
        return [e for e in found if kind is None or isinstance(e, kind)]

    def kinds(self) -> list[str]:
        return [message.name for message in self.store.outbox]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def repo(tmp_path: Path) -> GitRepo:
    return GitRepo(tmp_path / "repo")


@pytest.fixture
def store() -> InMemoryStore:
    return InMemoryStore()


@pytest.fixture
def bus(store: InMemoryStore, clock: FakeClock, tmp_path: Path) -> MessageBus:
    deps = Dependencies(
        clock=clock,
        sources=GitSourceRepository(tmp_path / "trees"),
        lease_timeout=LEASE_TIMEOUT,
        server_url=SERVER_URL,
    )
    return MessageBus(memory_uow_factory(store), deps)


@pytest.fixture
def world(store: InMemoryStore, bus: MessageBus, clock: FakeClock, repo: GitRepo) -> World:
    return World(store, bus, clock, repo)
