"""The commit status clients against a recording fake forge on 127.0.0.1: the exact request
each forge gets (method, path, auth header, body) and what each kind of answer means."""

from __future__ import annotations

import socket
import time
from collections.abc import AsyncIterator, Iterator

import pytest

from ferrous.domain.commit_status import CommitState, CommitStatus, StatusNotDelivered
from ferrous.domain.forge import ForgeKind, ForgeTarget
from ferrous.infrastructure.forges.statuses import HttpCommitStatusClient
from tests.fake_forge import FakeForge

SHA = "0123456789abcdef0123456789abcdef01234567"
TOKEN = "s3cret-token"


def status(state: CommitState = CommitState.PENDING) -> CommitStatus:
    return CommitStatus(
        sha=SHA,
        ref="main",
        state=state,
        context="ferrous/default",
        description="Build #7 is pending",
        target_url="http://ci.example.com/builds/b-1",
    )


@pytest.fixture
def forge() -> Iterator[FakeForge]:
    with FakeForge(token=TOKEN) as fake:
        yield fake


@pytest.fixture
async def client() -> AsyncIterator[HttpCommitStatusClient]:
    http = HttpCommitStatusClient()
    yield http
    await http.close()


def target(forge: FakeForge, kind: ForgeKind, prefix: str = "", repo: str = "o/r") -> ForgeTarget:
    return ForgeTarget(kind=kind, api_url=forge.url + prefix, repo=repo)


async def test_github_gets_a_bearer_token_and_its_json(
    forge: FakeForge, client: HttpCommitStatusClient
) -> None:
    await client.post(target(forge, ForgeKind.GITHUB), TOKEN, status())

    [request] = forge.requests
    assert (request.method, request.path) == ("POST", f"/repos/o/r/statuses/{SHA}")
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.headers["accept"] == "application/vnd.github+json"
    assert request.headers["x-github-api-version"] == "2022-11-28"
    assert request.headers["user-agent"].startswith("ferrous-ci/")
    assert request.json == {
        "state": "pending",
        "target_url": "http://ci.example.com/builds/b-1",
        "description": "Build #7 is pending",
        "context": "ferrous/default",
    }


async def test_gitea_gets_a_token_header_under_its_api_prefix(
    forge: FakeForge, client: HttpCommitStatusClient
) -> None:
    await client.post(target(forge, ForgeKind.GITEA, "/api/v1"), TOKEN, status(CommitState.FAILED))

    [request] = forge.requests
    assert (request.method, request.path) == ("POST", f"/api/v1/repos/o/r/statuses/{SHA}")
    assert request.headers["authorization"] == f"token {TOKEN}"
    assert request.json == {
        "state": "failure",
        "target_url": "http://ci.example.com/builds/b-1",
        "description": "Build #7 is pending",
        "context": "ferrous/default",
    }


async def test_gitlab_gets_a_private_token_and_the_encoded_project_path(
    forge: FakeForge, client: HttpCommitStatusClient
) -> None:
    gitlab = target(forge, ForgeKind.GITLAB, "/api/v4", repo="group/sub/name")
    await client.post(gitlab, TOKEN, status(CommitState.RUNNING))
    await client.post(target(forge, ForgeKind.GITLAB, "/api/v4", repo="42"), TOKEN, status())

    first, second = forge.requests
    assert (first.method, first.path) == (
        "POST",
        f"/api/v4/projects/group%2Fsub%2Fname/statuses/{SHA}",
    )
    assert first.headers["private-token"] == TOKEN
    assert "authorization" not in first.headers
    assert first.json == {
        "state": "running",
        "ref": "main",
        "name": "ferrous/default",
        "target_url": "http://ci.example.com/builds/b-1",
        "description": "Build #7 is pending",
    }
    assert second.path == f"/api/v4/projects/42/statuses/{SHA}"


@pytest.mark.parametrize(
    ("state", "github", "gitlab"),
    [
        (CommitState.PENDING, "pending", "pending"),
        (CommitState.RUNNING, "pending", "running"),
        (CommitState.SUCCESS, "success", "success"),
        (CommitState.FAILED, "failure", "failed"),
        (CommitState.CANCELED, "error", "canceled"),
        (CommitState.SKIPPED, "success", "skipped"),
    ],
)
async def test_each_forge_gets_its_own_state_words(
    forge: FakeForge,
    client: HttpCommitStatusClient,
    state: CommitState,
    github: str,
    gitlab: str,
) -> None:
    await client.post(target(forge, ForgeKind.GITHUB), TOKEN, status(state))
    await client.post(target(forge, ForgeKind.GITEA), TOKEN, status(state))
    await client.post(target(forge, ForgeKind.GITLAB), TOKEN, status(state))

    assert [r.json["state"] for r in forge.requests] == [github, github, gitlab]


async def test_a_bad_token_is_given_up_without_showing_it(
    forge: FakeForge, client: HttpCommitStatusClient
) -> None:
    with pytest.raises(StatusNotDelivered) as refused:
        await client.post(target(forge, ForgeKind.GITHUB), "wrong-token", status())

    assert not refused.value.retryable
    assert "401" in refused.value.message
    assert "Bad credentials" in refused.value.message
    assert "wrong-token" not in refused.value.message


async def test_an_unknown_repository_is_given_up(
    forge: FakeForge, client: HttpCommitStatusClient
) -> None:
    forge.fail(1, status=404)
    with pytest.raises(StatusNotDelivered) as refused:
        await client.post(target(forge, ForgeKind.GITEA), TOKEN, status())
    assert not refused.value.retryable


@pytest.mark.parametrize("code", [500, 502, 503, 429])
async def test_server_errors_and_rate_limits_are_retried(
    forge: FakeForge, client: HttpCommitStatusClient, code: int
) -> None:
    forge.fail(1, status=code)
    with pytest.raises(StatusNotDelivered) as later:
        await client.post(target(forge, ForgeKind.GITHUB), TOKEN, status())
    assert later.value.retryable
    assert later.value.retry_after is None


async def test_retry_after_is_read_in_seconds_or_as_a_date(
    forge: FakeForge, client: HttpCommitStatusClient
) -> None:
    forge.fail(1, status=429, retry_after="7")
    forge.fail(
        1,
        status=503,
        retry_after=time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 120)),
    )
    delays = []
    for _ in range(2):
        with pytest.raises(StatusNotDelivered) as later:
            await client.post(target(forge, ForgeKind.GITLAB), TOKEN, status())
        assert later.value.retryable
        delays.append(later.value.retry_after)

    assert delays[0] == 7.0
    assert delays[1] is not None
    assert 100 < delays[1] <= 120


async def test_github_s_spent_rate_limit_waits_for_the_reset(
    forge: FakeForge, client: HttpCommitStatusClient
) -> None:
    reset = str(int(time.time()) + 60)
    forge.fail(1, status=403, x_ratelimit_remaining="0", x_ratelimit_reset=reset)

    with pytest.raises(StatusNotDelivered) as later:
        await client.post(target(forge, ForgeKind.GITHUB), TOKEN, status())

    assert later.value.retryable
    assert later.value.retry_after is not None
    assert 50 < later.value.retry_after <= 60


async def test_a_plain_403_is_given_up(forge: FakeForge, client: HttpCommitStatusClient) -> None:
    forge.fail(1, status=403)
    with pytest.raises(StatusNotDelivered) as refused:
        await client.post(target(forge, ForgeKind.GITHUB), TOKEN, status())
    assert not refused.value.retryable


async def test_a_forge_that_cannot_be_reached_is_retried(client: HttpCommitStatusClient) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed when the block ends: nobody listens there
    gone = ForgeTarget(kind=ForgeKind.GITHUB, api_url=f"http://127.0.0.1:{port}", repo="o/r")

    with pytest.raises(StatusNotDelivered) as later:
        await client.post(gone, TOKEN, status())

    assert later.value.retryable
    assert TOKEN not in later.value.message


async def test_gitlab_s_refusal_of_the_same_state_counts_as_taken(
    forge: FakeForge, client: HttpCommitStatusClient
) -> None:
    gitlab = target(forge, ForgeKind.GITLAB, "/api/v4", repo="g/r")
    await client.post(gitlab, TOKEN, status(CommitState.RUNNING))
    await client.post(gitlab, TOKEN, status(CommitState.RUNNING))  # a retry after a lost answer

    assert [r.status for r in forge.requests] == [201, 400]
