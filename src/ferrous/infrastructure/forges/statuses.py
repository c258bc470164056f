"""Commit statuses over the forges' REST APIs: GitHub, GitLab and Gitea/Forgejo.

One ``httpx.AsyncClient`` serves every forge; a request is built per forge by ``request_for``
(method, URL, headers, JSON body), which the tests check against a recording server.

What an answer means for the sender (``StatusNotDelivered.retryable``):

- 2xx: taken.
- 429, 5xx, a timeout or a connection error: try again later, after ``Retry-After`` when the
  forge says so. GitHub's rate limit answers 403 with ``x-ratelimit-remaining: 0``: that is a
  "later" too, until ``x-ratelimit-reset``.
- any other 4xx (a bad token, an unknown repository or commit): trying again would only
  hammer the forge, so the report is given up with the forge's answer as its error.
- GitLab refuses a status equal to the current one (400 "Cannot transition status"): the
  status is what we wanted, so that counts as taken (a retry after a lost answer does this).

Tokens go in headers only, and never into an error message.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import httpx

from ferrous import __version__
from ferrous.domain.commit_status import CommitState, CommitStatus, StatusNotDelivered
from ferrous.domain.forge import ForgeKind, ForgeTarget
from ferrous.domain.repo_credentials import scrub

TIMEOUT = httpx.Timeout(10.0, connect=5.0)
MAX_ERROR_TEXT = 300

#: GitHub and Gitea know pending, success, failure and error (Gitea also warning).
_GITHUB_STATES = {
    CommitState.PENDING: "pending",
    CommitState.RUNNING: "pending",
    CommitState.SUCCESS: "success",
    CommitState.FAILED: "failure",
    CommitState.CANCELED: "error",
    CommitState.SKIPPED: "success",  # nothing to run is not a failure; the text says skipped
}
#: GitLab knows pending, running, success, failed, canceled and skipped: all of ours.
_GITLAB_STATES = {state: state.value for state in CommitState}


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusRequest:
    method: str
    url: str
    headers: dict[str, str]
    json: dict[str, Any]


def request_for(target: ForgeTarget, token: str, status: CommitStatus) -> StatusRequest:
    """The forge's "create a commit status" call."""
    sha = quote(status.sha, safe="")
    if target.kind is ForgeKind.GITLAB:
        body: dict[str, Any] = {
            "state": _GITLAB_STATES[status.state],
            "ref": status.ref,
            "name": status.context,
            "description": status.description,
        }
        if status.target_url:
            body["target_url"] = status.target_url
        return StatusRequest(
            method="POST",
            url=f"{target.api_url}/projects/{quote(target.repo, safe='')}/statuses/{sha}",
            headers={"PRIVATE-TOKEN": token},
            json=body,
        )
    body = {
        "state": _GITHUB_STATES[status.state],
        "description": status.description,
        "context": status.context,
    }
    if status.target_url:
        body["target_url"] = status.target_url
    owner, name = (quote(part, safe="") for part in target.repo.split("/", 1))
    url = f"{target.api_url}/repos/{owner}/{name}/statuses/{sha}"
    if target.kind is ForgeKind.GITHUB:
        headers = {
            "Authorization": f"Bearer {token}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
        }
    elif target.kind is ForgeKind.GITEA:
        headers = {"Authorization": f"token {token}", "Accept": "application/json"}
    else:
        raise StatusNotDelivered(f"no status API for forge {target.kind!r}", retryable=False)
    return StatusRequest(method="POST", url=url, headers=headers, json=body)


class HttpCommitStatusClient:
    """``CommitStatusClient`` over HTTP; one connection pool for all forges."""

    def __init__(self, client: httpx.AsyncClient | None = None) -> None:
        self._http = client or httpx.AsyncClient(
            timeout=TIMEOUT,
            follow_redirects=False,  # a redirected POST would lose its body or its token
            headers={"User-Agent": f"ferrous-ci/{__version__}"},
        )

    async def post(self, target: ForgeTarget, token: str, status: CommitStatus) -> None:
        request = request_for(target, token, status)
        try:
            response = await self._http.request(
                request.method, request.url, headers=request.headers, json=request.json
            )
        except httpx.HTTPError as exc:  # timeouts, refused connections, broken answers
            raise StatusNotDelivered(
                f"{target.kind} could not be reached: {scrub(repr(exc), (token,))}",
                retryable=True,
            ) from None
        if response.is_success:
            return
        text = scrub(response.text[:MAX_ERROR_TEXT], (token,))
        if response.status_code == 400 and "Cannot transition status" in text:
            return  # GitLab: the commit has that state already
        message = f"{target.kind} answered {response.status_code}: {text}".strip()
        retry_after = _retry_after(response)
        limited = response.status_code == 403 and (
            response.headers.get("x-ratelimit-remaining") == "0" or retry_after is not None
        )
        retryable = response.status_code in (408, 429) or response.status_code >= 500 or limited
        raise StatusNotDelivered(message, retryable=retryable, retry_after=retry_after)

    async def close(self) -> None:
        await self._http.aclose()


def _retry_after(response: httpx.Response) -> float | None:
    """Seconds to wait, from ``Retry-After`` (seconds or a date) or GitHub's
    ``x-ratelimit-reset`` (epoch seconds) when the limit is spent."""
    value = response.headers.get("retry-after")
    if value:
        if value.strip().isdigit():
            return float(value.strip())
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None
    reset = response.headers.get("x-ratelimit-reset")
    if reset and reset.isdigit() and response.headers.get("x-ratelimit-remaining") == "0":
        return max(0.0, float(reset) - time.time())
    return None
