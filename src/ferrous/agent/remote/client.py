"""The agent's side of the agent protocol (DESIGN §5): one narrow client over HTTP JSON.

Call order: ``register`` once (or construct with a saved token), then any number of
``claim``, ``heartbeat``, ``append_log``, file transfers (``upload_artifacts``,
``download_artifacts``, ``upload_cache``, ``download_cache``) and ``complete`` calls,
concurrently if need be (one ``httpx.AsyncClient``, one event loop). ``aclose`` at the end.

Files travel as streamed bodies with their sha256 in ``X-Checksum-Sha256``, from and to files
on disk (``streams``): an upload is sent again from its start when it fails transiently, and
so is a download whose body is cut short (``BODY_RETRIES`` times); a download whose bytes do
not hash to the server's checksum raises ``ChecksumMismatch``.

Failures:
- Transient ones (connection refused or reset, timeouts, 5xx, 429) are retried with
  exponential backoff and jitter, capped, for up to ``RetryPolicy.give_up_after`` seconds, so
  a server restart does not kill an agent; then ``ServerUnavailable``. With several server
  URLs (replicas behind no load balancer), a network error moves the client to the next URL
  before it retries, so a dead replica is left for a live one. Retrying is safe for
  every call: a log chunk is appended at a byte offset (a repeated chunk is accepted once),
  and a repeated ``complete`` is refused, never counted twice.
- ``Unauthorized`` (401): the agent token (or registration token) is not accepted.
- ``LeaseLost`` (409, or 404 for an unknown job, on ``append_log``, ``complete`` and uploads;
  409 only on downloads, where 404 means "nothing there"): the agent no longer holds the job;
  for logs it carries the server's log size.
- ``AgentProtocolError`` for any other refusal (a bug on one side: not retried).

The agent token is sent only in the ``Authorization`` header and never logged, nor shown in
``repr``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import structlog

from ferrous.agent.remote.protocol import (
    AgentApi,
    AgentProtocolError,
    FileApi,
    LeaseLost,
    RetryPolicy,
    ServerUnavailable,
    Unauthorized,
)
from ferrous.agent.remote.streams import (
    CHECKSUM_HEADER,
    Downloaded,
    file_body,
    save_body,
)
from ferrous.archive import MEDIA_TYPE
from ferrous.domain.errors import ChecksumMismatch
from ferrous.domain.phases import Phase

__all__ = [
    "AgentApi",
    "AgentClient",
    "AgentCredentials",
    "AgentProtocolError",
    "FileApi",
    "LeaseLost",
    "RetryPolicy",
    "ServerUnavailable",
    "Unauthorized",
    "cache_path",
]

log = structlog.get_logger(__name__)

PREFIX = "/api/v1/agent"
#: Our wait for a claim: a bit above the server's long-poll (25 s by default).
CLAIM_TIMEOUT = 35.0
REQUEST_TIMEOUT = 30.0
#: A heartbeat is repeated every few seconds anyway: retrying one for long is pointless.
HEARTBEAT_RETRY_FOR = 5.0
#: How many times a download whose body was cut short is started again.
BODY_RETRIES = 3


@dataclass(frozen=True, slots=True)
class AgentCredentials:
    agent_id: str
    token: str = field(repr=False)


def _detail(response: httpx.Response) -> tuple[str, dict[str, Any]]:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200] or response.reason_phrase, {}
    if not isinstance(body, dict):
        return str(body)[:200], {}
    return str(body.get("detail") or body.get("title") or response.reason_phrase), body


class AgentClient:
    """See the module docstring; ``transport`` lets tests talk to an app in process."""

    def __init__(
        self,
        server_url: str | Sequence[str],
        *,
        token: str | None = None,
        agent_id: str | None = None,
        retry: RetryPolicy | None = None,
        claim_timeout: float = CLAIM_TIMEOUT,
        request_timeout: float = REQUEST_TIMEOUT,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        urls = [server_url] if isinstance(server_url, str) else list(server_url)
        if not urls:
            raise ValueError("AgentClient needs at least one server URL")
        self.server_urls = tuple(url.rstrip("/") for url in urls)
        self._current = 0
        self.agent_id = agent_id
        self._token = token
        self._retry = retry or RetryPolicy()
        self._claim_timeout = httpx.Timeout(claim_timeout, connect=min(10.0, request_timeout))
        self._http = httpx.AsyncClient(
            base_url=self.server_url + PREFIX,
            timeout=httpx.Timeout(request_timeout, connect=min(10.0, request_timeout)),
            transport=transport,
            headers={"User-Agent": "ferrous-agent"},
        )

    @property
    def server_url(self) -> str:
        """The URL in use: the first one, until a network error moves to the next."""
        return self.server_urls[self._current]

    def _next_server(self, failed: int) -> None:
        """Move on from URL number ``failed``, unless a concurrent call already did."""
        if len(self.server_urls) < 2 or failed != self._current:
            return
        self._current = (failed + 1) % len(self.server_urls)
        self._http.base_url = httpx.URL(self.server_url + PREFIX)
        log.warning("agent_server_switched", url=self.server_url)

    def __repr__(self) -> str:
        return f"AgentClient({self.server_url!r}, agent_id={self.agent_id!r})"

    async def __aenter__(self) -> AgentClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    def use_credentials(self, credentials: AgentCredentials) -> None:
        """Act as an agent registered before (its identity saved by the caller)."""
        self.agent_id, self._token = credentials.agent_id, credentials.token

    async def register(
        self,
        registration_token: str,
        *,
        name: str,
        labels: Sequence[str] = (),
        capacity: int = 1,
        platform: dict[str, Any] | None = None,
    ) -> AgentCredentials:
        """Join the server; the client keeps the agent token for the calls that follow."""
        body = {
            "token": registration_token,
            "name": name,
            "labels": list(labels),
            "capacity": capacity,
            "platform": platform or {},
        }
        response = await self._call("POST", "/register", json=body, auth=False)
        self._check(response)
        data = self._json(response)
        credentials = AgentCredentials(agent_id=str(data["agent_id"]), token=str(data["token"]))
        self.agent_id, self._token = credentials.agent_id, credentials.token
        log.info("agent_registered", agent_id=self.agent_id, name=name)
        return credentials

    async def claim(self) -> dict[str, Any] | None:
        """Long-poll for a job: its payload (``job_payload`` on the server), or None."""
        response = await self._call("POST", "/claim", timeout=self._claim_timeout)
        if response.status_code == 204:
            return None
        self._check(response)
        return self._json(response)

    async def heartbeat(self, running: Sequence[str]) -> list[str]:
        """Renew the leases of ``running`` jobs; returns the ids of the jobs to cancel."""
        response = await self._call(
            "POST", "/heartbeat", json={"running": list(running)}, retry_for=HEARTBEAT_RETRY_FOR
        )
        self._check(response)
        return [str(job_id) for job_id in self._json(response).get("cancel", [])]

    async def append_log(self, job_id: str, offset: int, data: bytes) -> int:
        """Append ``data`` at byte ``offset`` of the job's log; returns the log's size."""
        response = await self._call(
            "POST",
            f"/jobs/{job_id}/log",
            params={"offset": offset},
            content=data,
            headers={"Content-Type": "application/octet-stream"},
        )
        self._check(response, lease=True)
        return int(self._json(response)["size"])

    async def complete(
        self,
        job_id: str,
        attempt: int,
        exit_code: int | None,
        failure_reason: str | None,
        coverage: float | None = None,
        phases: Sequence[Phase] = (),
    ) -> str:
        """Report an attempt's result (and the coverage its log shows, and how long its
        phases took); returns the job's status as the server decided it."""
        body: dict[str, Any] = {
            "attempt": attempt,
            "exit_code": exit_code,
            "failure_reason": failure_reason,
            "coverage": coverage,
        }
        if phases:
            body["phases"] = [phase.as_json() for phase in phases]
        response = await self._call("POST", f"/jobs/{job_id}/complete", json=body)
        self._check(response, lease=True)
        return str(self._json(response).get("status", ""))

    async def upload_artifacts(
        self, job_id: str, kind: str, source: Path, sha256: str, *, name: str | None = None
    ) -> dict[str, Any]:
        """``PUT /jobs/{job_id}/artifacts/{kind}?name=``: an archive (``archive`` or a report
        kind such as ``junit``) of the job; the server's reply (size, files, warnings, tests)."""
        params = {"name": name} if name else None
        return await self._upload(f"/jobs/{job_id}/artifacts/{kind}", source, sha256, params)

    async def download_artifacts(
        self, job_id: str, source_job_id: str, target: Path
    ) -> Downloaded | None:
        """``GET /jobs/{job_id}/dependencies/{source_job_id}/artifacts`` into ``target``;
        None when that job has no artifacts."""
        path = f"/jobs/{job_id}/dependencies/{source_job_id}/artifacts"
        return await self._download(path, target)

    async def upload_cache(
        self, job_id: str, key: str, source: Path, sha256: str
    ) -> dict[str, Any]:
        """``PUT /jobs/{job_id}/caches/{key}``: a cache of the job's project."""
        return await self._upload(f"/jobs/{job_id}/caches/{cache_path(key)}", source, sha256)

    async def download_cache(self, job_id: str, key: str, target: Path) -> Downloaded | None:
        """``GET /jobs/{job_id}/caches/{key}`` into ``target``; None when there is none."""
        return await self._download(f"/jobs/{job_id}/caches/{cache_path(key)}", target)

    async def _upload(
        self, path: str, source: Path, sha256: str, params: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        size = source.stat().st_size
        response = await self._call(
            "PUT",
            path,
            params=params,
            body=lambda: file_body(source),
            headers={
                CHECKSUM_HEADER: sha256,
                "Content-Type": MEDIA_TYPE,
                "Content-Length": str(size),
            },
        )
        self._check(response, lease=True)
        return self._json(response)

    async def _download(self, path: str, target: Path) -> Downloaded | None:
        cut_short = 0
        while True:
            response = await self._call("GET", path, stream=True)
            try:
                if response.status_code == 404:
                    return None
                if response.status_code >= 400:
                    await response.aread()
                    self._check(response, lease=response.status_code == 409)
                try:
                    got = await save_body(response, target)
                except httpx.TransportError as exc:
                    cut_short += 1
                    if cut_short > BODY_RETRIES:
                        raise ServerUnavailable(
                            f"GET {path}: the download was cut short {cut_short} times ({exc})"
                        ) from exc
                    log.warning("agent_download_retry", call=f"GET {path}", error=str(exc))
                    await asyncio.sleep(self._retry.delay(cut_short))
                    continue
            finally:
                await response.aclose()
            if got.expected is not None and got.expected != got.sha256:
                raise ChecksumMismatch(
                    f"checksum mismatch (expected {got.expected[:12]}.., got "
                    f"{got.sha256[:12]}..): the stored archive is corrupt"
                )
            if got.expected is None:
                log.warning("agent_download_unchecked", call=f"GET {path}")
            return got

    async def _call(
        self,
        method: str,
        path: str,
        *,
        auth: bool = True,
        retry_for: float | None = None,
        headers: dict[str, str] | None = None,
        timeout: httpx.Timeout | None = None,
        body: Callable[[], AsyncIterator[bytes]] | None = None,
        stream: bool = False,
        **kwargs: Any,
    ) -> httpx.Response:
        """One call, retried while it fails transiently; the answer may still be a 4xx.

        ``body`` makes a streamed request body, afresh for each attempt; with ``stream`` the
        response's body is left to read (and the response to close) by the caller.
        """
        all_headers = dict(headers or {})
        if auth:
            if self._token is None:
                raise Unauthorized("the agent has no token: register it first")
            all_headers["Authorization"] = f"Bearer {self._token}"
        give_up = self._retry.give_up_after
        if retry_for is not None:
            give_up = retry_for if give_up is None else min(give_up, retry_for)
        started = time.monotonic()
        attempt = 0
        while True:
            retry_after = None
            using = self._current
            if body is not None:
                kwargs["content"] = body()
            try:
                request = self._http.build_request(
                    method,
                    path,
                    headers=all_headers,
                    timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
                    **kwargs,
                )
                response = await self._http.send(request, stream=stream)
            except httpx.TransportError as exc:
                error = type(exc).__name__
                self._next_server(using)
            except httpx.HTTPError as exc:  # not the network: retrying will not help
                raise AgentProtocolError(f"{method} {path}: {exc}") from exc
            else:
                if response.status_code < 500 and response.status_code != 429:
                    return response
                if stream:
                    await response.aclose()
                error = f"HTTP {response.status_code}"
                retry_after = response.headers.get("Retry-After")
            attempt += 1
            waited = time.monotonic() - started
            if give_up is not None and waited >= give_up:
                raise ServerUnavailable(
                    f"{method} {path}: {error}, still failing after {waited:.0f}s"
                )
            delay = self._retry.delay(attempt)
            if retry_after is not None and retry_after.isdigit():
                delay = max(delay, min(float(retry_after), self._retry.max_delay))
            if give_up is not None:
                delay = min(delay, max(0.0, give_up - waited))
            log.warning(
                "agent_request_retry",
                call=f"{method} {path}",
                attempt=attempt,
                error=error,
                retry_in=round(delay, 2),
            )
            await asyncio.sleep(delay)

    @staticmethod
    def _check(response: httpx.Response, *, lease: bool = False) -> None:
        status = response.status_code
        if status < 400:
            return
        detail, body = _detail(response)
        if status == 401:
            raise Unauthorized(detail, status=status)
        if lease and status in (404, 409):
            size = body.get("size")
            raise LeaseLost(detail, status=status, size=size if isinstance(size, int) else None)
        raise AgentProtocolError(f"HTTP {status}: {detail}", status=status)

    @staticmethod
    def _json(response: httpx.Response) -> dict[str, Any]:
        try:
            data = response.json()
        except ValueError as exc:
            raise AgentProtocolError(f"the server answered no JSON ({exc})") from exc
        if not isinstance(data, dict):
            raise AgentProtocolError("the server answered JSON that is not an object")
        return data


def cache_path(key: str) -> str:
    """A cache key as one path segment: every byte quoted but letters, digits and ``_.-~``,
    and a key of dots only quoted whole, so that no URL normalization can take it as ``..``."""
    quoted = quote(key, safe="")
    return quoted.replace(".", "%2E") if not quoted.strip(".") else quoted
