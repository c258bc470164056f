"""``POST /api/v1/hooks/{forge}/{project}`` on the real bus, use cases and in-memory adapters.

Signed deliveries build; a redelivery builds nothing again; what builds nothing is recorded
with the reason; bad signatures, unreadable bodies and oversized ones are refused with 401,
400 and 413, and no body, however mangled, gets a 5xx.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ferrous.api.app import create_app
from ferrous.api.services import ApiServices
from ferrous.application.dependencies import Dependencies, SystemClock
from ferrous.application.messagebus import MessageBus
from ferrous.infrastructure.forges.registry import PARSERS
from ferrous.infrastructure.memory import InMemoryQueries, InMemoryStore, memory_uow_factory
from ferrous.infrastructure.memory.secret_box import PlaintextSecretBox
from tests.auth import people
from tests.unit.api.conftest import assert_problem
from tests.unit.api.fakes import FakeFeed, FakeWaiter
from tests.unit.api.test_with_memory_adapters import FolderSources, StoreLogs
from tests.unit.forges.helpers import SHA_A, SHA_B, ZERO, signed_headers
from tests.unit.forges.test_github import REPO, SENDER, commit, pull_request, push

SECRET = "s3cret"  # the forge helpers sign with it; too short for the API, so padded below
PROJECT_SECRET = SECRET * 4
PIPELINE = """
always:
  script: [make]
docs:
  rules:
    - changes: [docs/**]
  script: [make docs]
"""
MAX_BYTES = 64 * 1024


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    (tmp_path / ".ferrous.yml").write_text(PIPELINE)
    store = InMemoryStore()
    deps = Dependencies(
        clock=SystemClock(),
        sources=FolderSources(tmp_path),
        secret_box=PlaintextSecretBox(),
        webhook_parsers=PARSERS,
    )

    async def no_agent(token_hash: str) -> str | None:
        return None

    signed = people(store)
    services = ApiServices(
        bus=MessageBus(memory_uow_factory(store), deps),
        queries=InMemoryQueries(store),
        logs_reader=StoreLogs(store),
        log_events=FakeFeed(),
        claim_waiter=FakeWaiter(),
        agent_by_token_hash=no_agent,
        agent_registration_token="reg",
        authenticator=signed.authenticator,
        webhook_max_bytes=MAX_BYTES,
    )
    transport = httpx.ASGITransport(create_app(services))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://test", headers=signed.headers()
    ) as client:
        created = await client.post(
            "/api/v1/projects",
            json={"name": "hello", "repo_url": "/srv/hello.git", "webhook_secret": PROJECT_SECRET},
        )
        assert created.status_code == 201, created.text
        yield client


def signed(event: str, payload: dict[str, Any] | bytes, delivery: str = "d-1") -> dict[str, Any]:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = signed_headers("github", event, body, PROJECT_SECRET)
    return {"content": body, "headers": headers | {"X-GitHub-Delivery": delivery}}


def problem_type(response: httpx.Response, status: int) -> str:
    return str(assert_problem(response, status)["type"]).rsplit(":", 1)[1]


async def builds(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    listing = await client.get("/api/v1/builds")
    return list(listing.json()["items"])


async def test_a_push_builds_with_the_files_it_changed(client: httpx.AsyncClient) -> None:
    answer = await client.post("/api/v1/hooks/github/hello", **signed("push", push()))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["outcome"] == "built"
    assert body["redelivery"] is False
    assert len(body["build_ids"]) == 1
    build = (await client.get(f"/api/v1/builds/{body['build_ids'][0]}")).json()
    assert (build["source"], build["ref"], build["sha"]) == ("push", "main", "c" * 40)
    # README.md changed, not docs/**: rules:changes leaves the docs job out
    assert [job["name"] for job in build["jobs"]] == ["always"]


async def test_a_redelivery_builds_nothing_again(client: httpx.AsyncClient) -> None:
    first = await client.post("/api/v1/hooks/github/hello", **signed("push", push()))
    again = await client.post("/api/v1/hooks/github/hello", **signed("push", push()))
    other = await client.post("/api/v1/hooks/github/hello", **signed("push", push(), "d-2"))
    assert again.json()["redelivery"] is True
    assert again.json()["build_ids"] == first.json()["build_ids"]
    assert other.json()["redelivery"] is False
    assert len(await builds(client)) == 2


async def test_a_merge_request_builds_a_detached_pipeline(client: httpx.AsyncClient) -> None:
    answer = await client.post(
        "/api/v1/hooks/github/hello", **signed("pull_request", pull_request("opened"))
    )
    assert answer.json()["outcome"] == "built", answer.text
    build = (await client.get(f"/api/v1/builds/{answer.json()['build_ids'][0]}")).json()
    assert (build["source"], build["ref"]) == ("merge_request_event", "feature")


@pytest.mark.parametrize(
    ("event", "payload", "outcome", "reason"),
    [
        ("ping", {"zen": "hi", "hook_id": 1, "repository": REPO, "sender": SENDER}, "ping", "ping"),
        ("push", push(deleted=True, after=ZERO, commits=[]), "ignored", "delet"),
        ("pull_request", pull_request("closed"), "ignored", "closed"),
        (
            "push",
            push(commits=[commit(SHA_B, message="fix typo [skip ci]")]),
            "skipped",
            "[skip ci]",
        ),
    ],
)
async def test_what_builds_nothing_says_why(
    client: httpx.AsyncClient, event: str, payload: dict[str, Any], outcome: str, reason: str
) -> None:
    answer = await client.post("/api/v1/hooks/github/hello", **signed(event, payload))
    assert answer.status_code == 200, answer.text
    assert answer.json()["outcome"] == outcome
    assert reason in answer.json()["message"]
    assert answer.json()["build_ids"] == []
    assert await builds(client) == []
    log = (await client.get("/api/v1/projects/hello/webhook-deliveries")).json()["items"]
    assert [(d["delivery_id"], d["outcome"]) for d in log] == [("d-1", outcome)]


async def test_the_delivery_log_is_newest_first(client: httpx.AsyncClient) -> None:
    for n in range(3):
        await client.post("/api/v1/hooks/github/hello", **signed("push", push(), f"d-{n}"))
    log = await client.get("/api/v1/projects/hello/webhook-deliveries", params={"limit": 2})
    assert [d["delivery_id"] for d in log.json()["items"]] == ["d-2", "d-1"]
    assert log.json()["items"][0]["event"] == "push"


async def test_the_secret_is_never_shown(client: httpx.AsyncClient) -> None:
    project = await client.get("/api/v1/projects/hello")
    assert project.json()["webhook_secret_set"] is True
    assert PROJECT_SECRET not in project.text


async def test_a_bad_or_missing_signature_is_401(client: httpx.AsyncClient) -> None:
    request = signed("push", push())
    request["headers"]["X-Hub-Signature-256"] = "sha256=" + "0" * 64
    forged = await client.post("/api/v1/hooks/github/hello", **request)
    assert problem_type(forged, 401) == "webhook-unauthenticated"
    del request["headers"]["X-Hub-Signature-256"]
    unsigned = await client.post("/api/v1/hooks/github/hello", **request)
    assert problem_type(unsigned, 401) == "webhook-unauthenticated"
    assert await builds(client) == []
    log = await client.get("/api/v1/projects/hello/webhook-deliveries")
    assert log.json()["items"] == []  # unauthenticated deliveries are not recorded


async def test_a_project_without_a_secret_refuses_deliveries(client: httpx.AsyncClient) -> None:
    cleared = await client.patch("/api/v1/projects/hello", json={"webhook_secret": ""})
    assert cleared.json()["webhook_secret_set"] is False
    answer = await client.post("/api/v1/hooks/github/hello", **signed("push", push()))
    assert problem_type(answer, 401) == "webhook-unauthenticated"


async def test_a_short_secret_is_refused(client: httpx.AsyncClient) -> None:
    answer = await client.patch("/api/v1/projects/hello", json={"webhook_secret": "short"})
    assert problem_type(answer, 422) == "invalid-value"


async def test_unreadable_deliveries_are_400(client: httpx.AsyncClient) -> None:
    answer = await client.post("/api/v1/hooks/github/hello", **signed("push", b"{not json"))
    assert problem_type(answer, 400) == "webhook-payload-invalid"
    no_event = signed("push", push())
    del no_event["headers"]["X-GitHub-Event"]
    answer = await client.post("/api/v1/hooks/github/hello", **no_event)
    assert problem_type(answer, 400) == "webhook-payload-invalid"


async def test_unknown_forge_or_project_is_404(client: httpx.AsyncClient) -> None:
    assert_problem(
        await client.post("/api/v1/hooks/sourcehut/hello", **signed("push", push())), 404
    )
    assert_problem(await client.post("/api/v1/hooks/github/nobody", **signed("push", push())), 404)


async def test_a_body_over_the_limit_is_413(client: httpx.AsyncClient) -> None:
    huge = push(padding="x" * MAX_BYTES)
    answer = await client.post("/api/v1/hooks/github/hello", **signed("push", huge))
    assert problem_type(answer, 413) == "payload-too-large"


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    event=st.sampled_from(["push", "pull_request", "ping", "create", "issues", ""]),
    body=st.one_of(
        st.binary(max_size=300),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=20),
            lambda inner: (
                st.lists(inner, max_size=4)
                | st.dictionaries(st.text(max_size=10), inner, max_size=5)
            ),
            max_leaves=20,
        ).map(lambda value: json.dumps(value).encode()),
        st.builds(
            lambda ref, before: json.dumps(push(ref=ref, before=before)).encode(),
            st.text(max_size=30),
            st.sampled_from([SHA_A, ZERO, "", "nothex", "-x"]),
        ),
    ),
)
async def test_signed_garbage_never_gets_a_5xx(
    client: httpx.AsyncClient, event: str, body: bytes
) -> None:
    answer = await client.post("/api/v1/hooks/github/hello", **signed(event, body, "fuzz"))
    assert answer.status_code < 500, answer.text
