"""Fixtures for end-to-end tests: real server processes on each database backend."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.server_process import (
    ServerProcess,
    drop_postgres_database,
    postgres_database,
)

BACKENDS = ["sqlite", "postgres"]


def git_repo(folder: Path) -> Path:
    def git(*args: str) -> None:
        subprocess.run(
            [
                "git",
                "-C",
                str(folder),
                "-c",
                "user.name=Ferrous",
                "-c",
                "user.email=ci@ferrous",
                *args,
            ],
            check=True,
            capture_output=True,
        )

    git("init", "-q", "-b", "main")
    git("add", "-A")
    git("commit", "-q", "-m", "scenario")
    return folder


@pytest.fixture(params=BACKENDS)
def backend_env(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    if request.param == "sqlite":
        yield {}
        return
    admin = os.environ.get("FERROUS_TEST_POSTGRES_URL")
    if not admin:
        pytest.skip("FERROUS_TEST_POSTGRES_URL is not set: no PostgreSQL to test against")
    url = postgres_database(admin)
    try:
        yield {"FERROUS_DATABASE_URL": url}
    finally:
        drop_postgres_database(admin, url)


@pytest.fixture
def server(tmp_path: Path, backend_env: dict[str, str]) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path / "data", env=backend_env).start()
    try:
        yield process
    finally:
        process.stop()
