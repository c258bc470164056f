"""``/metrics`` of a real ``ferrous serve`` after a scripted set of builds (SQLite and
PostgreSQL), read with Prometheus' own text parser.

Three builds of one pipeline, told apart by a variable: one succeeds, one fails, one stops
at a manual job. The database's counts must be exact; the histograms, observed by this
server as the jobs ran, must have one queue wait per job for its label set (``linux``),
one duration per finished job and build; the request counter must name route templates.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import git_repo
from tests.e2e.server_process import ServerProcess, wait_for_build

pytestmark = pytest.mark.e2e

TOKEN = "metrics-scraper-secret"
PIPELINE = """\
stages: [test, deploy]
test:
  stage: test
  tags: [linux]
  script:
    - echo "the outcome is $OUTCOME"
    - test "$OUTCOME" != fail
deploy:
  stage: deploy
  tags: [linux]
  script: [echo deploying]
  rules:
    - if: $OUTCOME == "manual"
      when: manual
"""
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
def server(tmp_path: Path, backend_env: dict[str, str]) -> Iterator[ServerProcess]:
    env = {**backend_env, "FERROUS_METRICS_TOKEN": TOKEN, "FERROUS_AGENT_LABELS": "linux"}
    process = ServerProcess(tmp_path / "data", agents=2, env=env).start()
    try:
        yield process
    finally:
        process.stop()


def scrape(server: ServerProcess) -> Samples:
    answer = httpx.get(f"{server.url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 200, answer.text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


def value(found: Samples, name: str, **labels: str) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


def settled(server: ServerProcess, timeout: float = 10.0) -> Samples:
    """A scrape once the last build's observations are in (they follow its commit; the
    counts are cached for 2 s)."""
    deadline = time.monotonic() + timeout
    while True:
        found = scrape(server)
        done = value(found, "ferrous_build_duration_seconds_count", status="success") == 1
        done = done and value(found, "ferrous_builds", status="manual") == 1
        if done or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


def test_metrics_after_a_scripted_set_of_builds(server: ServerProcess, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / ".ferrous.yml").write_text(PIPELINE)
    git_repo(repo)
    client = server.client()
    client.post("/projects", json={"name": "app", "repo_url": str(repo)}).raise_for_status()
    statuses, ids = [], []
    for outcome in ("pass", "fail", "manual"):
        body = {"variables": {"OUTCOME": outcome}}
        build = client.post("/projects/app/builds", json=body).raise_for_status().json()
        statuses.append(wait_for_build(client, build["id"])["status"])
        ids.append(build["id"])
        client.get(f"/builds/{build['id']}").raise_for_status()
    assert statuses == ["success", "failed", "manual"]

    assert httpx.get(f"{server.url}/metrics").status_code == 401
    wrong = httpx.get(f"{server.url}/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    found = settled(server)

    # from the database: exact
    assert value(found, "ferrous_builds", status="success") == 1
    assert value(found, "ferrous_builds", status="failed") == 1
    assert value(found, "ferrous_builds", status="manual") == 1
    assert value(found, "ferrous_builds", status="running") == 0
    assert value(found, "ferrous_jobs", status="success") == 2
    assert value(found, "ferrous_jobs", status="failed") == 1
    assert value(found, "ferrous_jobs", status="manual") == 1
    assert value(found, "ferrous_jobs", status="pending") == 0
    assert value(found, "ferrous_jobs_running") == 0
    assert not [labels for name, labels in found if name == "ferrous_jobs_pending"]
    assert value(found, "ferrous_agents_online") == 2
    assert value(found, "ferrous_agent_capacity_slots") >= 2
    assert value(found, "ferrous_agent_used_slots") == 0
    assert ("ferrous_outbox_backlog", frozenset()) in found
    assert ("ferrous_outbox_oldest_age_seconds", frozenset()) in found

    # observed by this server
    assert value(found, "ferrous_queue_wait_seconds_count", labels="linux") == 3
    assert value(found, "ferrous_queue_wait_seconds_sum", labels="linux") >= 0
    assert value(found, "ferrous_job_duration_seconds_count", status="success") == 2
    assert value(found, "ferrous_job_duration_seconds_count", status="failed") == 1
    assert value(found, "ferrous_build_duration_seconds_count", status="success") == 1
    assert value(found, "ferrous_build_duration_seconds_count", status="failed") == 1
    assert value(found, "ferrous_log_bytes_total") > 0
    build_route = {"method": "GET", "route": "/api/v1/builds/{build_id}"}
    assert value(found, "ferrous_http_requests_total", **build_route, status="200") >= 6
    assert value(found, "ferrous_http_request_duration_seconds_count", **build_route) >= 6
    raw = [v for _, labels in found for _, v in labels if any(i in v for i in ids)]
    assert raw == []  # route templates, never raw paths
    unauthorized = {"method": "GET", "route": "/metrics", "status": "401"}
    assert value(found, "ferrous_http_requests_total", **unauthorized) == 2
