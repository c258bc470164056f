"""A real ``ferrous serve`` process for end-to-end tests, on SQLite or PostgreSQL.

Its first admin's password is ``tests.auth.ADMIN_PASSWORD`` unless the test sets
``FERROUS_ADMIN_PASSWORD``; ``token`` is a personal API token of that admin, made on first
use (servers sharing a database share their admin), which ``client()`` sends and
``cli_env()`` hands to ``ferrous`` commands as ``FERROUS_TOKEN``.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from contextlib import suppress
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from tests.auth import ADMIN_PASSWORD, bearer, server_token

LISTENING = re.compile(r"listening on (https?://\S+)")


class ServerProcess:
    def __init__(
        self,
        data_dir: Path,
        *,
        agents: int = 3,
        env: dict[str, str] | None = None,
        args: tuple[str, ...] = (),  # more `ferrous serve` options
    ):
        self.data_dir = data_dir
        self.agents = agents
        self.args = args
        self.env = {**os.environ, **(env or {})}
        self.env.pop("FERROUS_URL", None)
        self.env.pop("FERROUS_TOKEN", None)
        self.env.setdefault("FERROUS_ADMIN_PASSWORD", ADMIN_PASSWORD)
        self._token: str | None = None
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""
        self.log = data_dir / "server.log"

    def start(self, timeout: float = 60.0) -> ServerProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-m", "ferrous", "serve", "--port", "0"]
        argv += ["--data-dir", str(self.data_dir), "--agents", str(self.agents), *self.args]
        with self.log.open("a") as log:
            self.proc = subprocess.Popen(
                argv, env=self.env, stdout=subprocess.PIPE, stderr=log, text=True
            )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        line = ""
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line and self.proc.poll() is not None:
                break
            found = LISTENING.search(line)
            if found:
                self.url = found[1]
                return self
        raise AssertionError(f"server did not start: {line!r}\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill(self) -> None:
        """kill -9: no cleanup at all, as a crash would leave things."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()

    @property
    def token(self) -> str:
        """The admin's API token (it outlives restarts: it is in the database)."""
        if self._token is None:
            self._token = server_token(self.url, self.env["FERROUS_ADMIN_PASSWORD"])
        return self._token

    def client(self, *, signed_in: bool = True) -> httpx.Client:
        headers = bearer(self.token) if signed_in else None
        return httpx.Client(base_url=self.url + "/api/v1", timeout=30.0, headers=headers)

    def cli_env(self) -> dict[str, str]:
        """The environment of a ``ferrous`` command talking to this server as its admin."""
        return {**os.environ, "FERROUS_URL": self.url, "FERROUS_TOKEN": self.token, "NO_COLOR": "1"}


def wait_for_build(client: httpx.Client, build_id: str, timeout: float = 90.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    build: dict[str, Any] = {}
    while time.monotonic() < deadline:
        build = client.get(f"/builds/{build_id}").raise_for_status().json()
        if build["status"] in ("success", "failed", "canceled", "skipped", "manual"):
            return build
        time.sleep(0.1)
    raise AssertionError(f"build did not finish: {build}")


def postgres_database(admin_url: str) -> str:
    """A fresh, empty database for one server; returns its URL."""
    name = f"ferrous_e2e_{uuid.uuid4().hex[:12]}"
    plain = admin_url.replace("postgresql+asyncpg://", "postgresql://")

    async def create() -> None:
        conn = await asyncpg.connect(plain)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(create())
    base = admin_url.rsplit("/", 1)[0]
    return f"{base}/{name}"


def drop_postgres_database(admin_url: str, url: str) -> None:
    name = url.rsplit("/", 1)[1]
    plain = admin_url.replace("postgresql+asyncpg://", "postgresql://")

    async def drop() -> None:
        conn = await asyncpg.connect(plain)
        try:
            with suppress(Exception):
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(drop())
