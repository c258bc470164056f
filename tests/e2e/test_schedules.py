"""Schedules on a real ``ferrous serve``: the CLI manages them and the firer fires them.

The firing test stands for a server that was down while ticks went by: it moves the stored
tick three hours into the past (the only thing done behind the server's back) and waits for
the server's own firer (``FERROUS_SCHEDULE_POLL`` keeps its longest sleep short) to make one
build, not one per missed tick, and to move the tick into the future. Everything else is the
real path: firer singleton, use case, git, agents, API. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.e2e.conftest import git_repo
from tests.e2e.server_process import ServerProcess, wait_for_build

pytestmark = pytest.mark.e2e

PIPELINE = """\
report:
  script:
    - echo "source=$CI_PIPELINE_SOURCE nightly=$NIGHTLY"
"""


def ferrous(server: ServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ferrous", *args],
        env=server.cli_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def server(tmp_path: Path, backend_env: dict[str, str]) -> Any:
    env = {**backend_env, "FERROUS_SCHEDULE_POLL": "0.5"}
    process = ServerProcess(tmp_path / "data", agents=2, env=env).start()
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / ".gitlab-ci.yml").write_text(PIPELINE)
    git_repo(repo)
    added = ferrous(process, "project", "add", "app", str(repo))
    assert added.returncode == 0, added.stderr
    try:
        yield process
    finally:
        process.stop()


def test_the_cli_manages_a_schedule_and_runs_it_now(server: ServerProcess) -> None:
    added = ferrous(
        server, "schedule", "add", "app", "--cron", "0 3 * * *", "--var", "NIGHTLY=yes",
        "--description", "nightly", "--json",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    schedule = json.loads(added.stdout)
    listed = ferrous(server, "schedule", "list", "app")
    assert schedule["id"] in listed.stdout
    assert "nightly" in listed.stdout

    updated = ferrous(server, "schedule", "update", schedule["id"], "--timezone", "Asia/Tokyo")
    assert updated.returncode == 0, updated.stderr
    assert "0 3 * * * (Asia/Tokyo)" in updated.stdout

    before = server.client().get(f"/schedules/{schedule['id']}").json()
    assert before["timezone"] == "Asia/Tokyo"

    ran = ferrous(server, "schedule", "run", schedule["id"], "--wait")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "[report] source=schedule nightly=yes" in ran.stdout

    after = server.client().get(f"/schedules/{schedule['id']}").json()
    assert after["last_build_id"] is not None
    assert after["next_run_at"] == before["next_run_at"]  # running now moves no tick
    deleted = ferrous(server, "schedule", "delete", schedule["id"])
    assert deleted.returncode == 0, deleted.stderr
    assert server.client().get(f"/schedules/{schedule['id']}").status_code == 404


def test_a_schedule_due_after_downtime_fires_once(
    server: ServerProcess, backend_env: dict[str, str]
) -> None:
    client = server.client()
    schedule = (
        client.post(
            "/projects/app/schedules", json={"cron": "0 3 * * *", "variables": {"NIGHTLY": "late"}}
        )
        .raise_for_status()
        .json()
    )
    missed = datetime.now(UTC) - timedelta(hours=3)
    _move_tick(server, backend_env, schedule["id"], missed)

    fired = _wait_for(lambda: client.get(f"/schedules/{schedule['id']}").json()["last_build_id"])
    build = wait_for_build(client, fired)
    assert (build["status"], build["source"], build["schedule_id"]) == (
        "success",
        "schedule",
        schedule["id"],
    )
    log = client.get(f"/jobs/{build['jobs'][0]['id']}/log").text
    assert "source=schedule nightly=late" in log
    time.sleep(1.5)  # three firer polls: nothing more fires
    after = client.get(f"/schedules/{schedule['id']}").json()
    assert datetime.fromisoformat(after["next_run_at"]) > datetime.now(UTC)
    page = client.get("/builds", params={"project": "app"}).json()
    assert [b["id"] for b in page["items"]] == [build["id"]]


def _wait_for(read: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = read()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("the schedule did not fire")


def _move_tick(
    server: ServerProcess, env: dict[str, str], schedule_id: str, when: datetime
) -> None:
    """Set the stored ``next_run_at``, as if the server had been down since ``when``."""
    url = env.get("FERROUS_DATABASE_URL")
    if url is None:
        with sqlite3.connect(server.data_dir / "ferrous.db", timeout=30) as conn:
            stamp = when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")  # as SQLAlchemy does
            done = conn.execute(
                "UPDATE schedules SET next_run_at = ? WHERE id = ?", (stamp, schedule_id)
            )
            assert done.rowcount == 1
        return

    async def move() -> None:
        conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            status = await conn.execute(
                "UPDATE schedules SET next_run_at = $1 WHERE id = $2", when, schedule_id
            )
            assert status == "UPDATE 1"
        finally:
            await conn.close()

    asyncio.run(move())
