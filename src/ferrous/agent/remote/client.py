"""The agent's side of the agent protocol (DESIGN §5): one narrow client over HTTP JSON.

Call order: ``register`` once (or construct with a saved token), then any number of
``claim``, ``heartbeat``, ``append_log`` and ``complete`` calls, concurrently if need be (one
``httpx.AsyncClient``, one event loop). ``aclose`` at the end.

Failures:
- Transient ones (connection refused or reset, timeouts, 5xx, 429) are retried with
  exponential backoff and jitter, capped, for up to ``RetryPolicy.give_up_after`` seconds, so
  a server restart does not kill an agent; then ``ServerUnavailable``. With several server
  URLs (replicas behind no load balancer), a network error moves the client to the next URL
  before it retries, so a dead replica is left for a live one. Retrying is safe for
  every call: a log chunk is appended at a byte offset (a repeated chunk is accepted once),
  and a repeated ``complete`` is refused, never counted twice.
- ``Unauthorized`` (401): the agent token (or registration token) is not accepted.
- ``LeaseLost`` (409, or 404 for an unknown job, on ``append_log`` and ``complete``): the
  agent no longer holds the job; for logs it carries the server's log size.
- ``AgentProtocolError`` for any other refusal (a bug on one side: not retried).

The agent token is sent only in the ``Authorization`` header and never logged, nor shown in
``repr``.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
import structlog

from ferrous.domain.errors import FerrousError

log = structlog.get_logger(__name__)

PREFIX = "/api/v1/agent"
#: Our wait for a claim: a bit above the server's long-poll (25 s by default).
CLAIM_TIMEOUT = 35.0
REQUEST_TIMEOUT = 30.0
#: A heartbeat is repeated every few seconds anyway: retrying one for long is pointless.
HEARTBEAT_RETRY_FOR = 5.0


class AgentProtocolError(FerrousError):
    """The server refused an agent protocol call."""

    def __init__(self, message: str | None = None, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class Unauthorized(AgentProtocolError):
    """The server does not accept this agent's token: register the agent again."""


class LeaseLost(AgentProtocolError):
    """This agent no longer holds the job (canceled, finished or taken over)."""

    def __init__(
        self, message: str | None = None, *, status: int | None = None, size: int | None = None
    ) -> None:
        super().__init__(message, status=status)
        self.size = size  # the job log's size on the server, when it said


class ServerUnavailable(AgentProtocolError):
    """The server could not be reached; retrying did not help."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """Exponential backoff with jitter: delay n is between half and all of
    ``min(max_delay, initial * 2**n)``; give up after ``give_up_after`` seconds (None: never)."""

    initial: float = 0.2
    max_delay: float = 10.0
    give_up_after: float | None = 600.0

    def delay(self, attempt: int) -> float:
        cap = min(self.max_delay, self.initial * 2 ** min(attempt, 30))
        return random.uniform(cap / 2, cap)


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
        self, job_id: str, attempt: int, exit_code: int | None, failure_reason: str | None
    ) -> str:
        """Report an attempt's result; returns the job's status as the server decided it."""
        body = {"attempt": attempt, "exit_code": exit_code, "failure_reason": failure_reason}
        response = await self._call("POST", f"/jobs/{job_id}/complete", json=body)
        self._check(response, lease=True)
        return str(self._json(response).get("status", ""))

    async def _call(
        self,
        method: str,
        path: str,
        *,
        auth: bool = True,
        retry_for: float | None = None,
        headers: dict[str, str] | None = None,
        timeout: httpx.Timeout | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """One call, retried while it fails transiently; the answer may still be a 4xx."""
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
            try:
                response = await self._http.request(
                    method,
                    path,
                    headers=all_headers,
                    timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
                    **kwargs,
                )
            except httpx.TransportError as exc:
                error = type(exc).__name__
                self._next_server(using)
            except httpx.HTTPError as exc:  # not the network: retrying will not help
                raise AgentProtocolError(f"{method} {path}: {exc}") from exc
            else:
                if response.status_code < 500 and response.status_code != 429:
                    return response
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


class AgentApi(Protocol):
    """What a worker needs of the server (``AgentClient`` implements it).

    Every method may be called concurrently with the others from one event loop; each may
    raise ``ServerUnavailable``, ``Unauthorized`` or ``AgentProtocolError``, and the last two
    ``LeaseLost``. Cancelling a call abandons it: a claim abandoned while the server was
    leasing a job leaves that job leased to this agent until the server notices.
    """

    async def claim(self) -> dict[str, Any] | None: ...

    async def heartbeat(self, running: Sequence[str]) -> list[str]: ...

    async def append_log(self, job_id: str, offset: int, data: bytes) -> int: ...

    async def complete(
        self, job_id: str, attempt: int, exit_code: int | None, failure_reason: str | None
    ) -> str: ...
