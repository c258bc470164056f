"""Each CLI test has its own config dir, and no token or server from the run's environment.

Fixtures that start an API set ``FERROUS_TOKEN`` to an admin's token, as a person would
after ``ferrous login``; ``admin_headers`` is that token for the tests' own HTTP calls.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI

from tests.auth import bearer


@pytest.fixture(autouse=True)
def config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    for name in ("FERROUS_TOKEN", "FERROUS_URL"):
        monkeypatch.delenv(name, raising=False)
    return home


def admin_headers() -> dict[str, str]:
    return bearer(os.environ["FERROUS_TOKEN"])


@contextmanager
def api_in_thread(app: FastAPI) -> Iterator[str]:
    """Serve ``app`` on a free loopback port in a thread, for the CLI to call over HTTP."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive(), "the API did not start"
        assert time.monotonic() < deadline, "the API did not start in time"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
