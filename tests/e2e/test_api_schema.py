"""Schemathesis over every operation of the OpenAPI document, on a real ``ferrous serve``.

Property-based: for each operation, Schemathesis sends the schema's examples, boundary and
invalid values (its coverage phase) and generated requests (positive and negative), with
an admin's API token (an agent's token for the agent protocol), and checks every answer: no
5xx, a documented status, content type and headers, a body that matches its documented
schema, 405 with the right ``Allow``, 401 without a token. Path parameters come half the
time from the seeded
objects (a project whose repository has a ``.gitlab-ci.yml``, its builds and jobs, a
schedule, tokens, secrets, a user), so success answers are checked too, not only 404s.

The default run uses SQLite only (a run costs a minute of a CI core): what PostgreSQL alone
refused (a NUL in a parameter) is pinned by ``tests/integration/sql/test_refused_values.py``;
``FERROUS_SCHEMATHESIS_BACKENDS=sqlite,postgres`` runs both.

The run is seeded (``SEED``): what CI finds on a commit, anyone finds again on it.
``FERROUS_SCHEMATHESIS_SEED=random`` (or another number) explores further; a failing run
prints its seed, which replays it.

Schemathesis runs as its own process (its CLI): importing it into this one would patch
Hypothesis for every other test of the session. The run prints its figures (operations,
cases, failures, seconds) and the test fails on any failure, with the CLI's report of it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.auth import bearer
from tests.e2e.conftest import git_repo
from tests.e2e.server_process import ServerProcess, wait_for_build

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]  # slower when CI shares its cores

BOOTSTRAP = "frr_schemathesis-bootstrap"
SEED = 20261127
MAX_EXAMPLES = 10  # per operation and phase: a run stays near a minute on 2 cores
PIPELINE = """\
stages: [build, deploy]
build:
  stage: build
  script:
    - echo building
deploy:
  stage: deploy
  when: manual
  script:
    - echo deploying
"""
SERVER_ENV = {
    "FERROUS_AGENT_REGISTRATION_TOKEN": BOOTSTRAP,
    "FERROUS_CLAIM_TIMEOUT": "1",  # the agent protocol's long-poll: 1 s, not 25, per claim
    # generated requests come fast, and bad passwords are the point: no 429 to wade through
    "FERROUS_RATE_LIMIT_PER_IP": "0",
    "FERROUS_RATE_LIMIT_PER_USER": "0",
    "FERROUS_LOGIN_FAILURES_PER_ACCOUNT": "0",
    "FERROUS_LOGIN_FAILURES_PER_IP": "0",
}
CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
    "missing_required_header",
    "unsupported_method",  # 405 for a method the path does not have
    "allow_header_conformance",  # ... with every method it has in Allow
    "ignored_auth",  # each operation that needs a token refuses none or a wrong one
]
# Not checked: negative_data_rejection (Pydantic's lax mode takes 0 for false and 0.5 for a
# timestamp, which the schema's types do not say), positive_data_acceptance (a valid body
# for a finished build still gets 409), and the stateful phase's checks (the phase triples
# the run's time for no more failures).


@pytest.fixture
def server(tmp_path: Path, backend_env: dict[str, str]) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path / "data", agents=0, env={**backend_env, **SERVER_ENV})
    process.start()
    try:
        yield process
    finally:
        process.stop()


@dataclass(frozen=True, kw_only=True)
class Seeded:
    """The objects a run starts with, and the tokens it runs with."""

    api_token: str  # the admin's personal token: a logout cannot end it
    agent_token: str
    values: dict[str, list[str]]  # path parameter -> existing values
    pinned: dict[str, dict[str, str]]  # operation -> path parameters it always gets


def created(response: httpx.Response) -> Any:
    assert response.status_code in (200, 201), response.text
    return response.json()


def run_job(agent: httpx.Client, *, log: bytes, exit_code: int | None) -> dict[str, Any]:
    """Claim the next job as the agent, ship a log, and complete it (``exit_code`` None:
    leave it running)."""
    claimed = created(agent.post("/agent/claim"))
    url = f"/agent/jobs/{claimed['job_id']}"
    created(agent.post(f"{url}/log", params={"offset": 0}, content=log))
    if exit_code is not None:
        result = {"attempt": claimed["attempt"], "exit_code": exit_code}
        created(agent.post(f"{url}/complete", json=result))
    return claimed


def seed(server: ServerProcess, repo: Path) -> Seeded:
    with server.client() as client:  # as the admin, with a personal API token
        spare_token = created(client.post("/tokens", json={"name": "to revoke"}))

        project = created(client.post("/projects", json={"name": "app", "repo_url": str(repo)}))
        spare = {"name": "spare", "repo_url": str(repo)}
        created(client.post("/projects", json=spare))
        agent_registration = {"token": BOOTSTRAP, "name": "schemathesis"}
        agent = httpx.Client(base_url=client.base_url, timeout=30.0)
        credentials = created(agent.post("/agent/register", json=agent_registration))
        agent.headers.update(bearer(credentials["token"]))

        finished = created(client.post("/projects/app/builds", json={"ref": "main"}))
        run_job(agent, log=b"building\n", exit_code=0)
        wait_for_build(client, finished["id"])  # its deploy job waits for a person
        running = created(client.post("/projects/app/builds", json={"ref": "main"}))
        run_job(agent, log=b"still building\n", exit_code=None)
        jobs = [
            job["id"]
            for build in (finished, running)
            for job in created(client.get(f"/builds/{build['id']}"))["jobs"]
        ]

        schedule = {"cron": "0 3 * * *", "description": "nightly"}
        schedules = [created(client.post("/projects/app/schedules", json=schedule))["id"]]
        spare_schedule = created(client.post("/projects/app/schedules", json=schedule))
        triggers = [created(client.post("/projects/app/trigger-tokens", json={}))["id"]]
        registrations = [created(client.post("/agent-registration-tokens", json={}))["id"]]
        secret = {"value": "s3cret-value", "masked": True}
        created(client.put("/projects/app/secrets/DEPLOY_KEY", json=secret))
        created(client.put("/secrets/REGISTRY_TOKEN", json=secret))
        user = created(client.post("/users", json={"username": "ada", "role": "developer"}))
        agent.close()

    return Seeded(
        api_token=server.token,
        agent_token=credentials["token"],
        values={
            "project": ["app"],
            "pipeline_id": [project["default_pipeline_id"]],
            "build_id": [finished["id"], running["id"]],
            "job_id": jobs,
            "schedule_id": schedules,
            "token_id": triggers + registrations,
            "user_id": [user["id"]],
            "name": ["DEPLOY_KEY", "REGISTRY_TOKEN"],
        },
        # Values Schemathesis learns from answers (the admin's id from /users, the run's
        # own token from /tokens) must not reach these: they would demote or lock out the
        # admin, or revoke the token the run uses, and every later answer would be 401/403.
        pinned={
            "DELETE /api/v1/tokens/{token_id}": {"token_id": spare_token["id"]},
            "PATCH /api/v1/users/{user_id}": {"user_id": user["id"]},
            # a generated repository URL would break the builds of ``app``
            "PATCH /api/v1/projects/{project}": {"project": "spare"},
            "DELETE /api/v1/schedules/{schedule_id}": {"schedule_id": spare_schedule["id"]},
        },
    )


def toml_value(value: Any) -> str:
    """A TOML value: JSON's strings, numbers, booleans and arrays are TOML's too."""
    if isinstance(value, dict):
        return (
            "{ " + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + " }"
        )
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    return json.dumps(value)


def schemathesis_config(server: ServerProcess, seeded: Seeded) -> str:
    lines = [
        f"base-url = {toml_value(server.url)}",
        "request-timeout = 15",
        "workers = 1",
        'suppress-health-check = ["too_slow", "filter_too_much", "data_too_large"]',
        "[generation]",
        'mode = "all"',
        f"max-examples = {MAX_EXAMPLES}",
        'database = "none"',
        "[phases.stateful]",
        "enabled = false",
        "[checks]",
        "enabled = false",
        *(f"{check}.enabled = true" for check in CHECKS),
        "[auth.openapi.BearerToken]",
        f"bearer = {toml_value(seeded.api_token)}",
        "[auth.openapi.AgentToken]",
        f"bearer = {toml_value(seeded.agent_token)}",
        "[parameters]",
        *(
            f'"path.{name}" = {{ dictionary = "{name}", probability = 0.5 }}'
            for name in seeded.values
        ),
    ]
    for name, values in seeded.values.items():
        lines += [f"[dictionaries.{name}]", f"values = {toml_value(values)}"]
    for operation, parameters in seeded.pinned.items():
        lines += [
            "[[operations]]",
            f"include-name = {toml_value(operation)}",
            f"parameters = {toml_value(parameters)}",
        ]
    # The live log stream ends only when its job does: read it for a second, then stop.
    lines += [
        "[[operations]]",
        'include-name = "GET /api/v1/jobs/{job_id}/log/stream"',
        "request-timeout = 1",
    ]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    "backend_env",
    os.environ.get("FERROUS_SCHEMATHESIS_BACKENDS", "sqlite").split(","),
    indirect=True,
)
def test_every_operation_answers_as_documented(
    server: ServerProcess, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / ".gitlab-ci.yml").write_text(PIPELINE)
    git_repo(repo)
    seeded = seed(server, repo)
    config = tmp_path / "schemathesis.toml"
    config.write_text(schemathesis_config(server, seeded))
    report = tmp_path / "schemathesis.json"

    argv = [str(Path(sys.executable).parent / "st"), "--config-file", str(config), "--no-color"]
    argv += ["run", f"{server.url}/api/openapi.json", "--report", "json"]
    argv += ["--report-json-path", str(report), "--report-dir", str(tmp_path)]
    seed_value = os.environ.get("FERROUS_SCHEMATHESIS_SEED", str(SEED))
    if seed_value != "random":
        argv += ["--seed", seed_value]
    run = subprocess.run(
        argv, capture_output=True, text=True, timeout=600, cwd=tmp_path, check=False
    )
    (tmp_path / "schemathesis.out").write_text(run.stdout + run.stderr)

    assert report.exists(), run.stdout[-5000:] + run.stderr[-3000:]
    result = json.loads(report.read_text())
    figures = {
        "operations": result["operations"]["total"],
        "tested": result["operations"]["tested"],
        "cases": result["test_cases"]["generated"],
        "failures": result["test_cases"]["unique_failures"],
        "errors": len(result["errors"]),
        "seconds": round(result["running_time"], 1),
        "seed": result["seed"],
    }
    with capsys.disabled():
        print(f"\nschemathesis: {json.dumps(figures)}")
    assert run.returncode == 0, run.stdout[-20000:] + run.stderr[-3000:]
    assert figures["tested"] == figures["operations"], figures
    assert figures["failures"] == figures["errors"] == 0, figures
    # Not a run of 401s: both tokens still work, and only operations that check a secret of
    # their own (a password, a registration or trigger token) never let a generated case in.
    with server.client() as client:
        assert client.get("/auth/me").status_code == 200
    document = httpx.get(f"{server.url}/api/openapi.json").json()
    public = {
        f"{method.upper()} {path}"
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        if operation.get("x-permission") == "public"
    }
    claim = httpx.post(f"{server.url}/api/v1/agent/claim", headers=bearer(seeded.agent_token))
    assert claim.status_code in (200, 204), claim.text
    # Schemathesis flags an operation when 90% of its answers were 401/403: with few distinct
    # valid cases (a DELETE by name, a logout, which wants a password sign-in's token) the
    # cases without a token or with a wrong one reach that by chance. What matters is that
    # the run's token lets each flagged operation in: ask it once more, plainly.
    for label in sorted(set(result["warnings"]["missing_auth"]) - public):
        method, path = label.split(" ", 1)
        token = seeded.agent_token if path.startswith("/api/v1/agent/") else seeded.api_token
        url = server.url + re.sub(r"\{[^}]+\}", "missing-0", path)
        body = {} if method in ("POST", "PUT", "PATCH") else None
        answer = httpx.request(method, url, headers=bearer(token), json=body)
        assert answer.status_code not in (401, 403), (label, answer.status_code, answer.text)
