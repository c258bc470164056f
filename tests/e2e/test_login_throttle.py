"""A brute-force login loop on a real ``ferrous serve`` (SQLite and PostgreSQL).

After five wrong passwords for one account, the next attempt answers 429 with Retry-After,
even with the right password; the audit log shows every attempt, attributed to the
attempted username, with its status and address.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.server_process import ServerProcess

pytestmark = pytest.mark.e2e

PASSWORD = "correct horse battery staple"


@pytest.fixture
def server(tmp_path: Path, backend_env: dict[str, str]) -> Iterator[ServerProcess]:
    env = {**backend_env, "FERROUS_ADMIN_PASSWORD": PASSWORD}
    process = ServerProcess(tmp_path / "data", agents=0, env=env).start()
    try:
        yield process
    finally:
        process.stop()


def login(client: httpx.Client, password: str) -> httpx.Response:
    return client.post("/auth/login", json={"username": "admin", "password": password})


def test_a_brute_force_loop_is_stopped_and_recorded(server: ServerProcess) -> None:
    with server.client(signed_in=False) as client:
        signed_in = login(client, PASSWORD)
        assert signed_in.status_code == 200, signed_in.text
        admin = {"Authorization": f"Bearer {signed_in.json()['access_token']}"}

        answers = [login(client, f"guess-{n}") for n in range(7)]
        assert [a.status_code for a in answers] == [401] * 5 + [429] * 2
        assert 170 <= int(answers[5].headers["retry-after"]) <= 180  # 5 per 15 minutes
        assert answers[5].headers["content-type"] == "application/problem+json"
        assert login(client, PASSWORD).status_code == 429  # locked, right password or not

        audit = client.get(
            "/audit", params={"action": "POST /api/v1/auth/login", "limit": 50}, headers=admin
        )
        assert audit.status_code == 200, audit.text
        attempts = audit.json()["items"]
    assert [entry["result"] for entry in attempts] == [429] * 3 + [401] * 5 + [200]
    assert {entry["actor_name"] for entry in attempts} == {"admin"}
    assert {entry["source_ip"] for entry in attempts} == {"127.0.0.1"}
    assert all(entry["request_id"] for entry in attempts)
