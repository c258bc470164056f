"""A fake forge on 127.0.0.1: the commit status endpoints of GitHub, Gitea and GitLab.

It runs a stdlib HTTP server in a thread, so both in-process tests (an asyncio loop in the
main thread) and real server processes can post to it. Every request is recorded (method,
raw path, headers, parsed body). It checks the token like the forges do (401 otherwise),
can be told to fail the next requests (``fail(2, status=503, retry_after="1")``), and, like
GitLab, refuses to set a GitLab status its commit has already (400 "Cannot transition").

    with FakeForge(token="s3cret") as forge:
        ... post to forge.url + "/repos/o/r/statuses/<sha>" ...
        assert forge.requests[0].json["state"] == "pending"
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qsl, unquote

_GITHUB_LIKE = re.compile(
    r"^(?P<prefix>.*)/repos/(?P<owner>[^/]+)/(?P<name>[^/]+)/statuses/(?P<sha>[^/]+)$"
)
_GITLAB = re.compile(r"^(?P<prefix>.*)/projects/(?P<project>[^/]+)/statuses/(?P<sha>[^/]+)$")


@dataclass(frozen=True, slots=True)
class Recorded:
    method: str
    path: str  # as sent, still percent-encoded
    headers: dict[str, str]  # names in lower case
    json: dict[str, Any]  # the JSON or form body
    status: int  # what the fake answered


@dataclass(slots=True)
class Failure:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: str = '{"message": "fake failure"}'


class FakeForge:
    def __init__(self, token: str = "s3cret") -> None:
        self.token = token
        self.requests: list[Recorded] = []
        self.failures: list[Failure] = []
        self._gitlab_states: dict[tuple[str, str, str], str] = {}
        self._lock = threading.RLock()  # `wait_for` checks may call `taken`
        self._changed = threading.Condition(self._lock)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def fail(self, times: int, status: int = 500, **headers: str) -> None:
        """Answer the next ``times`` requests with ``status`` (and these headers, ``_`` in
        names written ``-``: ``retry_after="2"``)."""
        named = {name.replace("_", "-"): value for name, value in headers.items()}
        with self._lock:
            self.failures += [Failure(status, named) for _ in range(times)]

    def taken(self) -> list[Recorded]:
        """The requests that set a status (answered 2xx)."""
        with self._lock:
            return [r for r in self.requests if 200 <= r.status < 300]

    def wait_for(self, check: Callable[[list[Recorded]], bool], timeout: float = 30.0) -> None:
        """Block until ``check(requests)`` holds (from a thread, or a process's test)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not check(list(self.requests)):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"the fake forge saw only {self.requests}")
                self._changed.wait(left)

    # --- the server side -------------------------------------------------------------------

    def _answer(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], str]:
        content_type = headers.get("content-type", "")
        if content_type.startswith("application/x-www-form-urlencoded"):
            data: dict[str, Any] = dict(parse_qsl(body.decode()))
        else:
            data = json.loads(body or b"{}")
        status, extra, text = self._decide(method, path, headers, data)
        with self._changed:
            self.requests.append(Recorded(method, path, headers, data, status))
            self._changed.notify_all()
        return status, extra, text

    def _decide(
        self, method: str, path: str, headers: dict[str, str], data: dict[str, Any]
    ) -> tuple[int, dict[str, str], str]:
        github_like, gitlab = _GITHUB_LIKE.match(path), _GITLAB.match(path)
        if method != "POST" or not (github_like or gitlab):
            return 404, {}, '{"message": "Not Found"}'
        with self._lock:
            if self.failures:
                failure = self.failures.pop(0)
                return failure.status, failure.headers, failure.body
        if gitlab:
            if headers.get("private-token") != self.token:
                return 401, {}, '{"message": "401 Unauthorized"}'
            key = (unquote(gitlab["project"]), gitlab["sha"], str(data.get("name")))
            with self._lock:
                if self._gitlab_states.get(key) == data.get("state"):
                    return 400, {}, '{"message": "Cannot transition status via :run from :running"}'
                self._gitlab_states[key] = str(data.get("state"))
            return 201, {}, json.dumps({"id": len(self.requests) + 1, **data})
        if headers.get("authorization") not in (f"Bearer {self.token}", f"token {self.token}"):
            return 401, {}, '{"message": "Bad credentials"}'
        return 201, {}, json.dumps({"id": len(self.requests) + 1, **data})

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        forge = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self._serve()

            def do_GET(self) -> None:
                self._serve()

            def _serve(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {name.lower(): value for name, value in self.headers.items()}
                status, extra, text = forge._answer(self.command, self.path, headers, body)
                payload = text.encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                for name, value in extra.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet

        return Handler
