"""A crash loses no commit status: a server commits a build and dies before its sender runs;
the next server on the same database posts the status (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from ferrous.application import commands as c
from ferrous.application.bootstrap import Server, bootstrap
from ferrous.domain.forge import ForgeKind, ForgeSettings
from ferrous.infrastructure.settings import Settings
from tests.fake_forge import FakeForge, Recorded
from tests.integration.sql.conftest import postgres_admin, postgres_url, with_database

TOKEN = "ghp-s3cret"
PIPELINE = "test:\n  script: [echo hi]\n"


@pytest.fixture(params=["sqlite", "postgres"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'ferrous.db'}"
        return
    admin = postgres_url()
    name = f"ferrous_status_{uuid.uuid4().hex[:12]}"
    await postgres_admin(admin, f'CREATE DATABASE "{name}"')
    try:
        yield with_database(admin, name)
    finally:
        await postgres_admin(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def forge() -> Iterator[FakeForge]:
    with FakeForge(token=TOKEN) as fake:
        yield fake


def git_repo(path: Path) -> str:
    path.mkdir()
    (path / ".ferrous.yml").write_text(PIPELINE)
    for args in (
        ["init", "-q", "-b", "main"],
        ["add", "-A"],
        ["-c", "user.name=Dev", "-c", "user.email=dev@x", "commit", "-q", "-m", "ci"],
    ):
        subprocess.run(["git", "-C", str(path), *args], check=True, capture_output=True)
    return str(path)


async def taken(forge: FakeForge, count: int, timeout: float = 20.0) -> list[Recorded]:
    """Wait without blocking the loop (the server under test runs on it)."""
    for _ in range(int(timeout / 0.05)):
        if len(forge.taken()) >= count:
            return forge.taken()
        await asyncio.sleep(0.05)
    raise AssertionError(f"the fake forge saw only {forge.requests}")


async def test_a_status_committed_before_a_crash_is_sent_by_the_next_server(
    tmp_path: Path, database_url: str, forge: FakeForge
) -> None:
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        agents=0,
        public_url="http://ci.example.com",
    )
    first: Server = await bootstrap(settings)  # never started: its sender never runs
    settings_in = ForgeSettings(kind=ForgeKind.GITHUB, api_url=forge.url, repo="o/r", token=TOKEN)
    project = await first.bus.handle(
        c.CreateProject(name="app", repo_url=git_repo(tmp_path / "repo"), forge=settings_in)
    )
    [pipeline] = await first.queries.list_pipelines(project.id)
    build = await first.bus.handle(c.TriggerBuild(pipeline_id=pipeline.id))
    await first.engine.dispose()  # the crash: nothing else runs on this server
    await first.broker.close()
    assert forge.requests == []

    second = await bootstrap(settings)
    second.start()
    try:
        [request] = await taken(forge, 1)
    finally:
        await second.stop()

    assert (request.method, request.path) == ("POST", f"/repos/o/r/statuses/{build.sha}")
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.json == {
        "state": "pending",
        "description": "Build #1 is pending",
        "context": "ferrous/default",
        "target_url": f"http://ci.example.com/builds/{build.id}",
    }
