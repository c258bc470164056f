"""The agent's file endpoints (artifacts and caches, spec S3) as a small fake, on disk.

``FakeFiles`` is ASGI middleware: it answers ``PUT``/``GET`` of ``/jobs/{id}/artifacts/...``,
``/jobs/{id}/dependencies/{id}/artifacts`` and ``/jobs/{id}/caches/{key}`` itself and passes
everything else to ``app`` (the real server app, or nothing: 404). It checks
``X-Checksum-Sha256`` on uploads like the real server, and has knobs to break things: answer
503 a few times, announce a wrong checksum, cut a body short, or stall a download until the
client gives up. It also keeps the bodies of ``complete`` calls, to see the coverage an agent
reports.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_ROUTE = re.compile(r"^/api/v1/agent/jobs/(?P<job>[^/]+)/(?P<what>artifacts|caches)/(?P<rest>.+)$")
_DEPENDENCY = re.compile(
    r"^/api/v1/agent/jobs/(?P<job>[^/]+)/dependencies/(?P<rest>[^/]+)/artifacts$"
)


@dataclass
class FakeFiles:
    root: Path
    app: ASGIApp | None = None
    fail_next: int = 0  # answer this many file requests 503 (after reading their bodies)
    corrupt: bool = False  # downloads announce a checksum their bytes do not have
    cut_short: bool = False  # downloads stop halfway (Content-Length says more)
    stall: bool = False  # downloads send half, then wait for ever
    junit_reply: dict[str, Any] = field(
        default_factory=lambda: {"warnings": [], "tests": {"total": 0, "failed": 0}}
    )
    #: One per file request: (method, path, query string, headers, sizes of the body's pieces)
    requests: list[tuple[str, str, str, dict[str, str], list[int]]] = field(default_factory=list)
    completes: list[dict[str, Any]] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)  # job id -> artifacts:name
    stalled: asyncio.Event = field(default_factory=asyncio.Event)

    def artifact(self, job_id: str, kind: str = "archive") -> Path:
        return self.root / "artifacts" / f"{job_id}.{kind}"

    def cache(self, key: str) -> Path:
        return self.root / "caches" / hashlib.sha256(key.encode()).hexdigest()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._pass(scope, receive, send)
            return
        match = _ROUTE.match(scope["path"]) or _DEPENDENCY.match(scope["path"])
        if match is None:
            if scope["path"].endswith("/complete"):
                receive = await self._peek_complete(receive)
            await self._pass(scope, receive, send)
            return
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        sizes: list[int] = []
        query = scope["query_string"].decode()
        self.requests.append((scope["method"], scope["path"], query, headers, sizes))
        job, rest = match["job"], match["rest"]
        what = match.groupdict().get("what") or "artifacts"
        if what == "caches":
            target = self.cache(rest)
        elif scope["method"] == "PUT":
            target = self.artifact(job, rest)  # rest: the kind
        else:
            target = self.artifact(rest)  # rest: the job whose archive is asked for
        if scope["method"] == "PUT":
            staging = target.with_name(target.name + ".part")
            sha = await _save(receive, staging, sizes)
            if self.fail_next:
                self.fail_next -= 1
                staging.unlink()
                await _answer(send, 503, {"detail": "try again"})
                return
            await self._put(send, staging, target, sha, headers, what, rest, query, job)
        elif self.fail_next:
            self.fail_next -= 1
            await _answer(send, 503, {"detail": "try again"})
        else:
            await self._get(send, target)

    async def _pass(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.app is None:
            await _answer(send, 404, {"detail": "not here"})
        else:
            await self.app(scope, receive, send)

    async def _peek_complete(self, receive: Receive) -> Receive:
        body = await _body(receive, [])
        self.completes.append(json.loads(body))
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        return replay

    async def _put(
        self,
        send: Send,
        staging: Path,
        target: Path,
        sha: str,
        headers: dict[str, str],
        what: str,
        rest: str,
        query: str,
        job: str,
    ) -> None:
        if headers.get("x-checksum-sha256") != sha:
            staging.unlink()
            await _answer(send, 422, {"title": "checksum-mismatch", "detail": "checksum"})
            return
        staging.replace(target)
        size = target.stat().st_size
        if what == "caches":
            await _answer(send, 201, {"key": rest, "size": size, "sha256": sha})
            return
        name = dict(p.split("=", 1) for p in query.split("&") if "=" in p).get("name")
        if name is not None:
            self.names[job] = name
        reply: dict[str, Any] = {"kind": rest, "name": name, "size": size, "sha256": sha}
        reply.update({"files": 0, "warnings": [], "tests": None})
        if rest == "junit":
            reply.update(self.junit_reply)
        await _answer(send, 201, reply)

    async def _get(self, send: Send, target: Path) -> None:
        if not target.is_file():
            await _answer(send, 404, {"detail": "none"})
            return
        size = target.stat().st_size
        digest = hashlib.sha256()
        with target.open("rb") as source:
            while piece := source.read(1 << 18):
                digest.update(piece)
        sha = hashlib.sha256(b"something else") if self.corrupt else digest
        headers = [
            (b"content-type", b"application/zstd"),
            (b"content-length", str(size).encode()),
            (b"x-checksum-sha256", sha.hexdigest().encode()),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        limit = size // 2 if self.cut_short or self.stall else size
        sent = 0
        with target.open("rb") as source:
            while sent < limit:
                piece = source.read(min(1 << 18, limit - sent))
                sent += len(piece)
                await send({"type": "http.response.body", "body": piece, "more_body": True})
        if self.stall:
            self.stalled.set()
            await asyncio.Event().wait()  # until the client goes away
        if sent == size:
            await send({"type": "http.response.body", "body": b""})
        # else: the connection ends with the body incomplete


async def _save(receive: Receive, target: Path, sizes: list[int]) -> str:
    """The request body into ``target`` (never whole in memory); its sha256."""
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    with target.open("wb") as sink:
        while True:
            message = await receive()
            piece = message.get("body", b"")
            if piece:
                sizes.append(len(piece))
                digest.update(piece)
                sink.write(piece)
            if not message.get("more_body"):
                return digest.hexdigest()


async def _body(receive: Receive, sizes: list[int]) -> bytes:
    parts: list[bytes] = []
    while True:
        message = await receive()
        piece = message.get("body", b"")
        if piece:
            sizes.append(len(piece))
            parts.append(piece)
        if not message.get("more_body"):
            return b"".join(parts)


async def _answer(send: Send, status: int, body: dict[str, Any]) -> None:
    headers = [(b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": json.dumps(body).encode()})
