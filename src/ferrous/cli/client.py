"""The CLI's side of the REST API: one small client, errors shown as people read them.

The server's address comes from ``--url``, ``FERROUS_URL``, or the server ``ferrous login``
last signed in to (default http://127.0.0.1:8000). Each call carries ``Authorization: Bearer``
with the token ``credentials.token_for`` picks (``ferrous --token``, ``FERROUS_TOKEN``, or
the one ``ferrous login`` stored for that server). A problem+json answer becomes one line on
stderr and exit code 1 (a refused or missing token says how to sign in); a server that does
not answer says so with the address it tried.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click
import typer

from ferrous.cli import credentials

if TYPE_CHECKING:
    import httpx

DEFAULT_URL = "http://127.0.0.1:8000"
API = "/api/v1"


def server_url(url: str | None) -> str:
    chosen = url or os.environ.get("FERROUS_URL") or credentials.default_server() or DEFAULT_URL
    return chosen.rstrip("/")


def given_token() -> str | None:
    """``ferrous --token ...``: the root command's option, if this run has one."""
    context = click.get_current_context(silent=True)
    if context is None:
        return None
    token = context.find_root().params.get("token")
    return token if isinstance(token, str) and token else None


def fail(message: str) -> typer.Exit:
    sys.stderr.write(f"ferrous: {message}\n")
    return typer.Exit(1)


class Client:
    def __init__(
        self, url: str | None, *, token: str | None = None, signed_in: bool = True
    ) -> None:
        """``token`` beats the usual choice; ``signed_in=False`` sends none at all."""
        import httpx  # here, not at the top: `ferrous lint` and `run` need no HTTP client

        self._httpx = httpx
        self.base = server_url(url)
        self.token: str | None = None
        if signed_in:
            self.token = token or credentials.token_for(self.base, given_token())
        self.headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        self.http = httpx.Client(base_url=self.base + API, timeout=30.0, headers=self.headers)

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self.http.request(method, path, **kwargs)
        except self._httpx.TransportError as exc:
            raise fail(f"cannot reach the server at {self.base}: {exc}") from exc
        if response.status_code >= 400:
            raise fail(self._refusal(response))
        if response.status_code == 204 or not response.content:
            return None
        if response.headers.get("content-type", "").startswith("application/json"):
            return response.json()
        return response.content

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.request("POST", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Any:
        return self.request("DELETE", path, **kwargs)

    @contextmanager
    def stream(self, method: str, path: str, **kwargs: Any) -> Iterator[httpx.Response]:
        """A response whose body is read as it arrives (downloads); refusals as ``request``."""
        try:
            with self.http.stream(
                method, path, timeout=self._httpx.Timeout(30.0, read=300.0), **kwargs
            ) as response:
                if response.status_code >= 400:
                    response.read()
                    raise fail(self._refusal(response))
                yield response
        except self._httpx.TransportError as exc:
            raise fail(f"lost the download from {self.base}: {exc}") from exc

    def stream_log(self, job_id: str, offset: int = 0) -> Iterator[tuple[str, str]]:
        """(event, data) pairs of a job's live log; ends after the job finished."""
        headers = {"Accept": "text/event-stream"}
        params = {"offset": offset}
        try:
            with self._httpx.stream(
                "GET",
                f"{self.base}{API}/jobs/{job_id}/log/stream",
                params=params,
                headers={**self.headers, **headers},
                timeout=self._httpx.Timeout(30.0, read=None),
            ) as response:
                if response.status_code >= 400:
                    response.read()
                    raise fail(self._refusal(response))
                event, data = "message", list[str]()
                for line in response.iter_lines():
                    if not line:
                        if data:
                            yield event, "\n".join(data)
                        event, data = "message", []
                    elif line.startswith("event:"):
                        event = line[6:].strip()
                    elif line.startswith("data:"):
                        data.append(line[5:].removeprefix(" "))
        except self._httpx.TransportError as exc:
            raise fail(f"lost the log stream from {self.base}: {exc}") from exc

    def _refusal(self, response: httpx.Response) -> str:
        """The problem's line; a call that needs a caller says how to become one."""
        text = _problem_text(response)
        if (
            response.status_code != 401
            or "bearer" not in response.headers.get("www-authenticate", "").lower()
        ):
            return text
        login = f"ferrous login --server {self.base}"
        if self.token is None:
            return f"{text}; not signed in: run `{login}`, or set FERROUS_TOKEN"
        return f"{text}; the token was refused: run `{login}` again, or check FERROUS_TOKEN"


def _problem_text(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}: {response.text[:200]}"
    detail = body.get("detail") or body.get("title") or response.reason_phrase
    errors = body.get("errors")
    if errors:
        detail += ": " + "; ".join(f"{e.get('field')}: {e.get('message')}" for e in errors)
    return f"{detail} (HTTP {response.status_code})"


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2) + "\n")


def print_table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    if not rows:
        sys.stdout.write("(none)\n")
        return
    texts = [[_cell(row.get(col)) for col in columns] for row in rows]
    widths = [max(len(col), *(len(t[i]) for t in texts)) for i, col in enumerate(columns)]
    sys.stdout.write("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)))
    sys.stdout.write("\n")
    for text in texts:
        sys.stdout.write("  ".join(t.ljust(w) for t, w in zip(text, widths, strict=True)).rstrip())
        sys.stdout.write("\n")


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    text = str(value)
    if len(text) == 40 and all(c in "0123456789abcdef" for c in text):
        return text[:8]  # a commit sha
    return text
